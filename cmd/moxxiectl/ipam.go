package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func (a *app) ipamCommand() *cobra.Command {
	return group("ipam", "Manage IP addresses, prefixes, VLANs and VNIs",
		a.vrfCommand(),
		a.prefixCommand(),
		a.ipRangeCommand(),
		a.addressCommand(),
		a.poolCommand(poolVLAN),
		a.idCommand(poolVLAN),
		a.poolCommand(poolVNI),
		a.idCommand(poolVNI),
	)
}

// withClient returns a RunE that makes an API client and calls fn with it.
func (a *app) withClient(fn func(ctx context.Context, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return fn(cmd.Context(), c, args)
	}
}

// readCommand returns a command that reads: it has the read flags and hands
// their options to fn.
func (a *app) readCommand(use, short string, args cobra.PositionalArgs,
	fn func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
	}
	cmd.RunE = a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
		if err := noEmptyFilters(cmd); err != nil {
			return err
		}
		q, err := rf.options()
		if err != nil {
			return err
		}
		return fn(ctx, c, q, args)
	})
	rf.register(cmd)
	return cmd
}

// noEmptyFilters refuses a string flag of a read command cmd given an
// empty value: an empty $PREFIX in a script's --prefix "$PREFIX" would
// otherwise select everything, as if the filter had been left out. --after
// selects nothing (empty is the first page).
func noEmptyFilters(cmd *cobra.Command) error {
	var names []string
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Value.Type() == "string" && f.Name != "after" {
			names = append(names, f.Name)
		}
	})
	return noEmpty(cmd, names...)
}

// noEmpty refuses the filter flags names of cmd when given empty.
func noEmpty(cmd *cobra.Command, names ...string) error {
	for _, name := range names {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed && f.Value.String() == "" {
			return usagef("--%s is empty: give it a value, or leave --%s out", name, name)
		}
	}
	return nil
}

// show prints v as JSON with -o json, and with text otherwise.
func (a *app) show(v any, text func(w io.Writer) error) error {
	if a.json() {
		return printJSON(a.stdout, v)
	}
	return text(a.stdout)
}

// showList prints list as a JSON array with -o json (empty, not null), and
// with text otherwise.
func showList[T any](a *app, list []T, text func(w io.Writer) error) error {
	if list == nil {
		list = []T{}
	}
	return a.show(list, text)
}

// refusesEmpty makes cmd, which creates or allocates, refuse a string
// flag given an empty value, a description aside: a script's --vrf "$VRF"
// or --dns-name "$NAME" with the variable unset would otherwise create in
// the default VRF, or allocate without the name it meant. It runs before
// cmd's own PreRunE.
func refusesEmpty(cmd *cobra.Command) *cobra.Command {
	pre := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		var names []string
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Value.Type() == "string" && f.Name != "description" {
				names = append(names, f.Name)
			}
		})
		if err := noEmpty(c, names...); err != nil {
			return err
		}
		if pre != nil {
			return pre(c, args)
		}
		return nil
	}
	return cmd
}

// idempotencyFlag is the --idempotency-key flag of allocating commands.
type idempotencyFlag struct{ key keyValue }

func (f *idempotencyFlag) register(cmd *cobra.Command) {
	cmd.Flags().Var(&f.key, "idempotency-key",
		"Idempotency-Key to send instead of a random one: the same command run again with the same key returns the first result")
}

func (f *idempotencyFlag) options() *client.WriteOptions {
	if f.key == "" {
		return nil
	}
	return &client.WriteOptions{IdempotencyKey: string(f.key)}
}

// keyValue is the value of --idempotency-key. An empty one (a script's
// unset $KEY) is refused: sending a random key instead would let a retry
// allocate again.
type keyValue string

func (k *keyValue) Set(s string) error {
	if s == "" {
		return errors.New("the key is empty: give one, or leave --idempotency-key out to send a random one")
	}
	*k = keyValue(s)
	return nil
}

func (k *keyValue) String() string { return string(*k) }

// Type implements pflag.Value.
func (k *keyValue) Type() string { return "string" }

// noteReplayed tells on stderr that an answer is the first result of an
// earlier request with the same Idempotency-Key, and what warnings the
// server gave with it.
func (a *app) noteReplayed(m *client.Meta) {
	if m == nil {
		return
	}
	if m.Replayed {
		fmt.Fprintln(a.stderr, "Note: an earlier request with this idempotency key was answered: showing its result.")
	}
	for _, w := range m.Warnings {
		fmt.Fprintln(a.stderr, "Warning:", w)
	}
}

// changed returns a pointer to v when the flag name was given, and nil
// otherwise, for the fields of a PATCH.
func changed[T any](cmd *cobra.Command, name string, v T) *T {
	if !cmd.Flags().Changed(name) {
		return nil
	}
	return &v
}

// percent formats a utilization as a percentage, or a dash when unknown.
func percent(u *client.Utilization) string {
	if u == nil {
		return "-"
	}
	return strconv.FormatFloat(u.Percent, 'f', -1, 64) + "%"
}

// usage formats a utilization as "12 of 254 (4.72%)".
func usage(u *client.Utilization) string {
	if u == nil {
		return "-"
	}
	return fmt.Sprintf("%s of %s (%s)", u.Used, u.Size, percent(u))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (a *app) vrfCommand() *cobra.Command {
	var req client.VRFRequest
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a VRF",
		Args:  exactArgs("ID"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.ID = args[0]
			v, _, err := c.VRFCreate(ctx, req, nil)
			if err != nil {
				return err
			}
			return a.show(v, func(w io.Writer) error { return printVRF(w, v) })
		}),
	}
	create.Flags().StringVar(&req.Description, "description", "", "what the VRF is for")
	create.Flags().StringVar(&req.Tenant, "tenant", "", "tenant owning the VRF")
	refusesEmpty(create)
	return group("vrf", "Manage VRFs (address spaces)",
		a.readCommand("list", "List VRFs", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.VRFList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "TENANT", "DESCRIPTION")
					for _, v := range list {
						row(tw, cell(v.ID), orDash(cell(v.Tenant)), orDash(cell(v.Description)))
					}
					return tw.Flush()
				})
			}),
		create,
		a.readCommand("get ID", "Show a VRF", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				v, _, err := c.VRFGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(v, func(w io.Writer) error { return printVRF(w, v) })
			}),
		&cobra.Command{
			Use:   "delete ID",
			Short: "Delete a VRF that holds no prefixes",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				v, _, err := c.VRFDelete(ctx, args[0], nil)
				if err != nil {
					return err
				}
				return a.show(v, func(w io.Writer) error { return printf(w, "VRF %s deleted\n", cell(args[0])) })
			}),
		},
	)
}

func printVRF(w io.Writer, v *client.VRF) error {
	return keyValues(w,
		"ID", cell(v.ID),
		"Tenant", orDash(cell(v.Tenant)),
		"Description", orDash(cell(v.Description)),
		"Created", formatTime(v.CreatedAt),
	)
}
