package main

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
)

// Formats of report --format; table and json are those of -o.
const formatCSV = "csv"

// reportFormatHelp describes --format, and how it goes with -o.
const reportFormatHelp = `output format: table, csv or json (default: that of -o). csv prints the
server's CSV as it is; json is the same as -o json. -o json with --format
table or csv is a usage error.`

// reportFlags are the flags of report usage and report chargeback.
type reportFlags struct {
	q      client.ReportQuery
	format string
}

func (f *reportFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.q.Tenant, "tenant", "", "one tenant's usage (a tenant token reads its own whatever is given)")
	fl.StringVar(&f.q.From, "from", "", "start: a date (2026-11-01) or RFC 3339 time, UTC (default: the start of this month)")
	fl.StringVar(&f.q.To, "to", "", "end, exclusive: a date or RFC 3339 time (default: the start of tomorrow)")
	fl.StringVar(&f.q.GroupBy, "group-by", "", "comma-separated: tenant, project, and one of hour, day, month (default: tenant)")
	fl.StringVar(&f.format, "format", "", reportFormatHelp)
}

// reportFormat reconciles --format with the global -o: --format json
// is -o json.
func (a *app) reportFormat(cmd *cobra.Command, format string) (string, error) {
	if !cmd.Flags().Changed("format") {
		return a.output, nil
	}
	switch format {
	case outputTable, formatCSV, outputJSON:
	default:
		return "", usagef("invalid --format %q: want table, csv or json", format)
	}
	if a.output == outputJSON && format != outputJSON {
		return "", usagef("--format %s and -o json disagree: give one of them", format)
	}
	if format == outputJSON {
		a.output = outputJSON
	}
	return format, nil
}

const reportLong = `Reports add up the usage metered into hourly buckets and daily rollups:
vCPUs and memory of running and stopped guests, disk, and IP addresses, per
tenant and project. Ranges of whole days (dates) read the daily rollups;
otherwise both ends must be whole hours, at most 93 days apart. Usage after
the last metering tick is not in a report yet: the table says how far
usage was metered.

Quantities are unit-hours: vCPU-hours, GiB-hours of memory, GiB-hours of
disk, address-hours.`

func (a *app) reportCommand() *cobra.Command {
	var uf reportFlags
	usage := &cobra.Command{
		Use:   "usage",
		Short: "Show metered usage per tenant, project and period",
		Long:  reportLong,
		Example: `  moxxiectl report usage --from 2026-11-01 --to 2026-12-01 --group-by tenant,project
  moxxiectl report usage --tenant acme --group-by day --format csv > acme-usage.csv`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := noEmpty(cmd, "tenant"); err != nil {
				return err
			}
			return a.runReport(cmd, client.ReportUsage, &uf)
		},
	}
	uf.register(usage)

	var cf reportFlags
	chargeback := &cobra.Command{
		Use:   "chargeback",
		Short: "Price metered usage with the rate cards of a currency",
		Long: reportLong + `

A chargeback prices each hour or day of usage with the rate card of
--currency in effect that day, in exact decimal arithmetic: each bucket's
cost is rounded to 6 decimal places, and the rows and the TOTAL are exact
sums of those costs, so they reconcile. A meter a card has no rate for is
free; usage on a day no card covers is an error naming the day. RATE is
"mixed" for a row priced at different rates.`,
		Example: `  moxxiectl report chargeback --currency EUR --from 2026-11-01 --to 2026-12-01
  moxxiectl report chargeback --currency EUR --group-by tenant,project,month --format csv`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := noEmpty(cmd, "tenant"); err != nil {
				return err
			}
			if cf.q.Currency == "" {
				return usagef("--currency is required, such as --currency EUR")
			}
			return a.runReport(cmd, client.ReportChargeback, &cf)
		},
	}
	cf.register(chargeback)
	chargeback.Flags().StringVar(&cf.q.Currency, "currency", "", "currency of the rate cards to price with, such as EUR (required)")

	return group("report", "Report metered usage and chargeback", usage, chargeback)
}

// runReport reads a report of kind and prints it in the format asked for.
func (a *app) runReport(cmd *cobra.Command, kind string, f *reportFlags) error {
	format, err := a.reportFormat(cmd, f.format)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if format == formatCSV {
		b, _, err := c.ReportCSV(ctx, kind, f.q)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	}
	if kind == client.ReportUsage {
		r, _, err := c.UsageReport(ctx, f.q)
		if err != nil {
			return err
		}
		if r.Rows == nil {
			r.Rows = []client.UsageRow{}
		}
		return a.show(r, func(w io.Writer) error { return printUsage(w, r) })
	}
	r, _, err := c.ChargebackReport(ctx, f.q)
	if err != nil {
		return err
	}
	if r.Rows == nil {
		r.Rows = []client.ChargeRow{}
	}
	return a.show(r, func(w io.Writer) error { return printChargeback(w, r) })
}

func printUsage(w io.Writer, r *client.UsageReport) error {
	if len(r.Rows) == 0 {
		return printf(w, "No usage %s.\n", reportSpan(r.From, r.To, r.MeteredUntil))
	}
	tw := newTable(w)
	row(tw, "TENANT", "PROJECT", "PERIOD", "METER", "UNIT-HOURS")
	for _, u := range r.Rows {
		row(tw, orDash(cell(u.Tenant)), orDash(cell(u.Project)), orDash(cell(u.Period)), cell(u.Meter), fixed6(u.UnitHours))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printf(w, "\nUsage %s.\n", reportSpan(r.From, r.To, r.MeteredUntil))
}

func printChargeback(w io.Writer, r *client.ChargebackReport) error {
	if len(r.Rows) == 0 {
		return printf(w, "No usage %s.\n", reportSpan(r.From, r.To, r.MeteredUntil))
	}
	tw := newTable(w)
	row(tw, "TENANT", "PROJECT", "PERIOD", "METER", "UNIT-HOURS", "RATE", "COST", "CURRENCY")
	for _, c := range r.Rows {
		row(tw, orDash(cell(c.Tenant)), orDash(cell(c.Project)), orDash(cell(c.Period)), cell(c.Meter),
			fixed6(c.UnitHours), cell(c.Rate), fixed6(c.Cost), cell(c.Currency))
	}
	row(tw, "TOTAL", "", "", "", "", "", fixed6(r.Total), cell(r.Currency))
	if err := tw.Flush(); err != nil {
		return err
	}
	return printf(w, "\nUsage %s.\n", reportSpan(r.From, r.To, r.MeteredUntil))
}

// reportSpan says what range a report covers and how far usage was
// metered.
func reportSpan(from, to, metered string) string {
	s := "from " + cell(from) + " to " + cell(to)
	if metered == "" {
		return s + ", nothing metered yet"
	}
	return s + ", metered until " + cell(metered)
}

// fixed6 writes a decimal string with 6 fraction digits, rounded half
// away from zero, as the server's CSV does; text that is not a decimal is
// shown as it is.
func fixed6(s string) string {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return cell(s)
	}
	return d.StringFixed(6)
}

func (a *app) rateCardCommand() *cobra.Command {
	var req client.RateCardRequest
	var rates []string
	put := &cobra.Command{
		Use:   "put ID",
		Short: "Create or replace a rate card",
		Long: `Create or replace a rate card: prices per unit-hour in one currency, valid
from a date to a date (exclusive; without --to, open-ended), UTC. Cards of
one currency must not overlap; they change at UTC midnight. put replaces the
whole card: a meter given no --rate is free.

Meters (memory priced per GiB-hour, disk per GiB-hour):
  ` + strings.Join(client.Meters, ", "),
		Example: `  moxxiectl rate-card put eur-2026 --currency EUR --from 2026-01-01 --to 2027-01-01 \
    --rate vcpu_running=0.02 --rate memory_running=0.004 --rate disk=0.0001`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case req.Currency == "":
				return usagef("--currency is required, such as --currency EUR")
			case req.EffectiveFrom == "":
				return usagef("--from is required: the first day the card applies, such as 2026-11-01")
			}
			r, err := parseRates(rates)
			if err != nil {
				return err
			}
			req.Rates = r
			c, err := a.client()
			if err != nil {
				return err
			}
			rc, _, err := c.RateCardPut(cmd.Context(), args[0], req, nil)
			if err != nil {
				return err
			}
			return a.show(rc, func(w io.Writer) error { return printRateCard(w, rc) })
		},
	}
	fl := put.Flags()
	fl.StringVar(&req.Currency, "currency", "", "three upper-case letters, such as EUR (required)")
	fl.StringVar(&req.EffectiveFrom, "from", "", "first day the card applies, such as 2026-11-01 (required)")
	fl.StringVar(&req.EffectiveTo, "to", "", "first day it no longer applies (default: open-ended)")
	fl.StringSliceVar(&rates, "rate", nil, "METER=PRICE per unit-hour, such as vcpu_running=0.02; repeat or comma-separate for several")

	return group("rate-card", "Manage the rate cards that price chargeback reports",
		a.readCommand("list", "List rate cards", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.RateCardList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "CURRENCY", "FROM", "TO", "RATES")
					for _, rc := range list {
						row(tw, cell(rc.ID), cell(rc.Currency), cell(rc.EffectiveFrom), orDash(cell(rc.EffectiveTo)), rateSummary(rc.Rates))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show a rate card", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				rc, _, err := c.RateCardGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(rc, func(w io.Writer) error { return printRateCard(w, rc) })
			}),
		put,
		&cobra.Command{
			Use:   "delete ID",
			Short: "Delete a rate card",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				rc, _, err := c.RateCardDelete(ctx, args[0], nil)
				if err != nil {
					return err
				}
				return a.show(rc, func(w io.Writer) error { return printf(w, "Rate card %s deleted\n", cell(args[0])) })
			}),
		},
	)
}

// parseRates parses --rate values, METER=PRICE. The meter must be known;
// the price is checked by the server.
func parseRates(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		m, price, ok := strings.Cut(v, "=")
		m, price = strings.TrimSpace(m), strings.TrimSpace(price)
		switch {
		case !ok || m == "" || price == "":
			return nil, usagef("--rate %q is not METER=PRICE, such as vcpu_running=0.02", v)
		case !slices.Contains(client.Meters, m):
			return nil, usagef("--rate %q: unknown meter %q: want one of %s", v, m, strings.Join(client.Meters, ", "))
		}
		if _, dup := out[m]; dup {
			return nil, usagef("--rate %q: %s is priced twice", v, m)
		}
		out[m] = price
	}
	return out, nil
}

// rateSummary lists a card's rates in the order of the meters, then any
// meter this moxxiectl does not know.
func rateSummary(rates map[string]string) string {
	var parts []string
	for _, m := range orderedMeters(rates) {
		parts = append(parts, m+"="+rates[m])
	}
	if len(parts) == 0 {
		return "- (all free)"
	}
	return cell(strings.Join(parts, " "))
}

// orderedMeters returns the meters of rates, known ones in the order of
// client.Meters first.
func orderedMeters(rates map[string]string) []string {
	var out, other []string
	for _, m := range client.Meters {
		if _, ok := rates[m]; ok {
			out = append(out, m)
		}
	}
	for m := range rates {
		if !slices.Contains(client.Meters, m) {
			other = append(other, m)
		}
	}
	slices.Sort(other)
	return append(out, other...)
}

func printRateCard(w io.Writer, rc *client.RateCard) error {
	to := rc.EffectiveTo
	if to == "" {
		to = "- (open-ended)"
	}
	if err := keyValues(w,
		"ID", cell(rc.ID),
		"Currency", cell(rc.Currency),
		"From", cell(rc.EffectiveFrom),
		"To", cell(to),
		"Updated", formatTime(rc.UpdatedAt),
	); err != nil {
		return err
	}
	if err := printf(w, "\n"); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "METER", "RATE")
	meters := slices.Clone(client.Meters)
	for _, m := range orderedMeters(rc.Rates) {
		if !slices.Contains(meters, m) {
			meters = append(meters, m)
		}
	}
	for _, m := range meters {
		rate, ok := rc.Rates[m]
		if !ok {
			rate = "free"
		}
		row(tw, cell(m), cell(rate))
	}
	return tw.Flush()
}
