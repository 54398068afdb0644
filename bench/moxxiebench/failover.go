package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"
)

// Kill is the record of one leader kill.
type Kill struct {
	N      int    `json:"n"`
	Leader string `json:"leader"`
	PID    int    `json:"pid"`
	// KilledAt is the wall-clock time of the kill (RFC 3339 with
	// nanoseconds), to find the election in the server logs.
	KilledAt string `json:"killed_at"`
	// OK is false when no write succeeded within --write-timeout.
	OK bool `json:"ok"`
	// FirstWriteMS is the time from the kill to the first successful write.
	FirstWriteMS float64 `json:"first_write_ms"`
	// Via is the survivor that answered the first successful write.
	Via string `json:"via"`
	// Attempts counts writes sent until the first success, inclusive.
	Attempts     int               `json:"attempts"`
	Errors       map[string]int    `json:"errors,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// RecoveredMS is the time from the kill until every server, the killed
	// one restarted, was ready again with a leader (measured after the first
	// successful write, so never less than FirstWriteMS).
	RecoveredMS float64 `json:"recovered_ms"`
	// NewLeader is the leader once the cluster was healthy again.
	NewLeader string `json:"new_leader"`
	// Trace lists the first attempts, to show where time went.
	Trace []Attempt `json:"trace"`
}

// maxTrace bounds Kill.Trace.
const maxTrace = 10

// Attempt is one write attempt after a kill.
type Attempt struct {
	// To is the survivor the write was sent to.
	To string `json:"to"`
	// StartMS and EndMS are offsets from the kill.
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
	// Result is "ok", an HTTP status or a transport error class.
	Result string `json:"result"`
}

// FailoverResult is the outcome of a failover run, as printed with --json.
type FailoverResult struct {
	Kills []Kill `json:"kills"`
	// FirstWrite is the distribution of FirstWriteMS over successful kills.
	FirstWrite Summary `json:"first_write"`
	// Failed counts kills after which no write succeeded in time.
	Failed  int    `json:"failed"`
	Started string `json:"started"`
}

// failover holds the settings of a failover run.
type failover struct {
	api            *moxxieAPI
	serversJSON    string
	kills          int
	writeTimeout   time.Duration
	attemptTimeout time.Duration
	retryDelay     time.Duration
	recoverTimeout time.Duration
	settle         time.Duration
	body           []byte
	log            io.Writer
}

func failoverCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("failover", stderr)
	f := &failover{log: stderr}
	fs.StringVar(&f.serversJSON, "servers-json", "", "servers.json of a dev cluster (id, pid, api_address of each server); re-read before every kill")
	addr := fs.String("addr", os.Getenv("MOXXIE_ADDR"), "API base URLs; only checked against servers.json, which is authoritative (default $MOXXIE_ADDR)")
	token := fs.String("token", os.Getenv("MOXXIE_TOKEN"), "bearer token (default $MOXXIE_TOKEN)")
	cacert := fs.String("cacert", os.Getenv("MOXXIE_CACERT"), "cluster CA certificate (default $MOXXIE_CACERT)")
	fs.IntVar(&f.kills, "kills", 20, "number of leader kills")
	fs.DurationVar(&f.writeTimeout, "write-timeout", 30*time.Second, "give up on a kill when no write succeeded this long after it")
	fs.DurationVar(&f.attemptTimeout, "attempt-timeout", 10*time.Second, "timeout of one write attempt after a kill; longer than the server's hold timeout (5s) so a write the server holds while it has no leader gets the server's answer")
	fs.DurationVar(&f.retryDelay, "retry-delay", 0, "pause between failed write attempts (0: retry immediately)")
	fs.DurationVar(&f.recoverTimeout, "recover-timeout", 90*time.Second, "how long to wait for the killed server to be restarted and the cluster healthy")
	fs.DurationVar(&f.settle, "settle", time.Second, "pause after the cluster is healthy before the next kill")
	total := fs.Duration("timeout", 30*time.Minute, "limit on the whole run")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of text")
	out := fs.String("out", "", "also write the JSON result to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench failover --servers-json DIR/servers.json --token T --cacert F [flags]\n\n"+
			"Repeatedly kills the leader with SIGKILL and measures the time to the first\n"+
			"successful write through a survivor. The dev supervisor must restart killed\n"+
			"servers; the next kill waits for all servers to be healthy again.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	switch {
	case f.serversJSON == "":
		return errors.New("--servers-json is required")
	case f.kills < 1 || f.kills > 1000:
		return errors.New("--kills must be between 1 and 1000")
	case f.writeTimeout <= 0 || f.attemptTimeout <= 0 || f.recoverTimeout <= 0 || *total <= 0:
		return errors.New("timeouts must be positive")
	}
	tr, err := newTransport(*cacert, 8)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	f.api = &moxxieAPI{client: &http.Client{Transport: tr}, token: *token, timeout: 5 * time.Second}
	f.body, _ = json.Marshal(map[string]string{"value": valueOf(64)})
	ctx, cancel := context.WithTimeout(ctx, *total)
	defer cancel()

	servers, err := readServers(f.serversJSON)
	if err != nil {
		return err
	}
	if err := checkAddrs(splitList(*addr), servers); err != nil {
		return err
	}
	res, err := f.run(ctx)
	if res != nil {
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr != nil {
			return jerr
		}
		if *out != "" {
			if werr := os.WriteFile(*out, append(b, '\n'), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printFailover(stdout, res)
		}
	}
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%d of %d kills saw no successful write within %v", res.Failed, len(res.Kills), f.writeTimeout)
	}
	return err
}

// checkAddrs verifies that every --addr URL belongs to a server of
// servers.json, so the run measures the cluster the caller meant.
func checkAddrs(addrs []string, servers []devServer) error {
	known := map[string]bool{}
	for _, s := range servers {
		known[baseURL(s.APIAddress)] = true
	}
	for _, a := range addrs {
		if !known[a] {
			return fmt.Errorf("--addr %s is not the api_address of any server in servers.json", a)
		}
	}
	return nil
}

// run performs the kills. It returns the kills done so far along with any
// error that stopped it.
func (f *failover) run(ctx context.Context) (*FailoverResult, error) {
	res := &FailoverResult{Started: time.Now().UTC().Format(time.RFC3339)}
	defer func() {
		var d []time.Duration
		for _, k := range res.Kills {
			if k.OK {
				d = append(d, time.Duration(k.FirstWriteMS*float64(time.Millisecond)))
			}
		}
		res.FirstWrite = summarize(d)
	}()
	fmt.Fprintf(f.log, "waiting for a healthy cluster (up to %v)\n", f.recoverTimeout)
	servers, _, err := f.waitHealthy(ctx)
	if err != nil {
		return nil, err
	}
	for n := 1; n <= f.kills; n++ {
		var st *clusterStatus
		if !sleepCtx(ctx, f.settle) {
			return res, ctx.Err()
		}
		// Leadership may have moved during the pause: look again.
		if st, err = f.healthy(ctx, servers); err != nil {
			if servers, st, err = f.waitHealthy(ctx); err != nil {
				return res, err
			}
		}
		k, t0, err := f.killOnce(ctx, n, servers, st)
		if err != nil {
			if !t0.IsZero() {
				res.Kills = append(res.Kills, k)
			}
			return res, fmt.Errorf("kill %d: %w", n, err)
		}
		if servers, st, err = f.waitHealthy(ctx); err != nil {
			res.Kills = append(res.Kills, k)
			return res, fmt.Errorf("kill %d: %w", n, err)
		}
		k.RecoveredMS = ms(time.Since(t0))
		k.NewLeader = st.Leader
		res.Kills = append(res.Kills, k)
		if !k.OK {
			res.Failed++
		}
		fmt.Fprintf(f.log, "kill %d/%d: leader %s (pid %d): first write after %s via %s (%d attempts), healthy after %s\n",
			n, f.kills, k.Leader, k.PID, fmtMS(k.FirstWriteMS), k.Via, k.Attempts, fmtMS(k.RecoveredMS))
	}
	return res, nil
}

// killOnce kills the leader named in st, measures the time to the first
// successful write through a survivor, and waits until the dev supervisor has
// restarted the killed server. It returns the time of the kill.
func (f *failover) killOnce(ctx context.Context, n int, servers []devServer, st *clusterStatus) (Kill, time.Time, error) {
	var leader devServer
	var survivors []devServer
	for _, s := range servers {
		if s.ID == st.Leader {
			leader = s
		} else {
			survivors = append(survivors, s)
		}
	}
	k := Kill{N: n, Leader: leader.ID, PID: leader.PID, Errors: map[string]int{}, ErrorSamples: map[string]string{}}
	var t0 time.Time
	if leader.ID == "" {
		return k, t0, fmt.Errorf("leader %q is not in %s", st.Leader, f.serversJSON)
	}
	if len(survivors) == 0 {
		return k, t0, errors.New("no survivors: the cluster has one server")
	}
	if err := checkMoxxied(leader.PID); err != nil {
		return k, t0, err
	}

	t0 = time.Now()
	k.KilledAt = t0.UTC().Format(time.RFC3339Nano)
	if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
		return k, t0, fmt.Errorf("kill -9 %d: %w", leader.PID, err)
	}
	for i := 0; ; i++ {
		s := survivors[i%len(survivors)]
		url := baseURL(s.APIAddress) + "/v1/cluster/settings/" + fmt.Sprintf("failover-%03d-%06d", n, i)
		start := time.Since(t0)
		o, _ := send(ctx, f.api.client, http.MethodPut, url, f.api.token, f.body, f.attemptTimeout, http.StatusOK)
		k.Attempts++
		if len(k.Trace) < maxTrace {
			result := o.Class
			if result == "" {
				result = "ok"
			}
			k.Trace = append(k.Trace, Attempt{To: s.ID, StartMS: ms(start), EndMS: ms(time.Since(t0)), Result: result})
		}
		if o.Class == "" {
			k.OK, k.FirstWriteMS, k.Via = true, ms(time.Since(t0)), s.ID
			break
		}
		if ctx.Err() != nil {
			return k, t0, ctx.Err()
		}
		k.Errors[o.Class]++
		if _, ok := k.ErrorSamples[o.Class]; !ok {
			k.ErrorSamples[o.Class] = o.Detail
		}
		if time.Since(t0) > f.writeTimeout {
			k.FirstWriteMS = ms(time.Since(t0))
			break
		}
		if f.retryDelay > 0 && !sleepCtx(ctx, f.retryDelay) {
			return k, t0, ctx.Err()
		}
	}
	if len(k.Errors) == 0 {
		k.Errors, k.ErrorSamples = nil, nil
	}

	// Wait for the supervisor to start a new process for the killed server.
	deadline := t0.Add(f.recoverTimeout)
	for {
		cur, err := readServers(f.serversJSON)
		if err == nil {
			if s, ok := findServer(cur, leader.ID); ok && s.PID != leader.PID && processAlive(s.PID) {
				break
			}
		}
		if time.Now().After(deadline) {
			return k, t0, fmt.Errorf("server %s was not restarted within %v of the kill (servers.json still lists pid %d)", leader.ID, f.recoverTimeout, leader.PID)
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return k, t0, ctx.Err()
		}
	}
	return k, t0, nil
}

// waitHealthy re-reads servers.json until healthy passes or the recover
// timeout expires.
func (f *failover) waitHealthy(ctx context.Context) ([]devServer, *clusterStatus, error) {
	deadline := time.Now().Add(f.recoverTimeout)
	for {
		servers, err := readServers(f.serversJSON)
		if err == nil {
			var st *clusterStatus
			if st, err = f.healthy(ctx, servers); err == nil {
				return servers, st, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("cluster not healthy within %v: %w", f.recoverTimeout, err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, nil, ctx.Err()
		}
	}
}

// healthy checks that every server of servers.json runs and is ready, and
// that /v1/status shows a leader and every server as leader or follower.
func (f *failover) healthy(ctx context.Context, servers []devServer) (*clusterStatus, error) {
	for _, s := range servers {
		if !processAlive(s.PID) {
			return nil, fmt.Errorf("server %s (pid %d) is not running", s.ID, s.PID)
		}
		if !f.api.ready(ctx, baseURL(s.APIAddress)) {
			return nil, fmt.Errorf("server %s is not ready", s.ID)
		}
	}
	st, err := f.api.status(ctx, baseURL(servers[0].APIAddress))
	if err != nil {
		return nil, err
	}
	if st.Leader == "" {
		return nil, errors.New("no leader")
	}
	if len(st.Servers) != len(servers) {
		return nil, fmt.Errorf("/v1/status lists %d servers, servers.json %d", len(st.Servers), len(servers))
	}
	for _, s := range st.Servers {
		if s.State != "leader" && s.State != "follower" {
			return nil, fmt.Errorf("server %s is %s", s.ID, s.State)
		}
		if _, ok := findServer(servers, s.ID); !ok {
			return nil, fmt.Errorf("server %s of /v1/status is not in servers.json", s.ID)
		}
	}
	return st, nil
}

func findServer(servers []devServer, id string) (devServer, bool) {
	for _, s := range servers {
		if s.ID == id {
			return s, true
		}
	}
	return devServer{}, false
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	return pid > 1 && syscall.Kill(pid, 0) == nil
}

// checkMoxxied refuses to kill a pid that is not a moxxied server, in case
// servers.json is stale and the pid was reused.
func checkMoxxied(pid int) error {
	if pid <= 1 || pid == os.Getpid() {
		return fmt.Errorf("refusing to kill pid %d", pid)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	if len(args) < 2 || !bytes.Contains(args[0], []byte("moxxied")) || string(args[1]) != "server" {
		return fmt.Errorf("pid %d is not a moxxied server (%q); servers.json may be stale", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	return nil
}

// printFailover prints a failover result as text.
func printFailover(w io.Writer, r *FailoverResult) {
	fmt.Fprintf(w, "failover: %d leader kills (kill -9), time to the first successful write through a survivor\n", len(r.Kills))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kill\tleader\tpid\tfirst write\tvia\tattempts\thealthy again\tnew leader\terrors\t")
	for _, k := range r.Kills {
		fw := fmtMS(k.FirstWriteMS)
		if !k.OK {
			fw = "none in " + fw
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t\n", k.N, k.Leader, k.PID, fw, k.Via, k.Attempts, fmtMS(k.RecoveredMS), k.NewLeader, formatCounts(k.Errors))
	}
	tw.Flush()
	s := r.FirstWrite
	fmt.Fprintf(w, "first write: min %s  p50 %s  p90 %s  p99 %s  max %s  (mean %s, %d kills, %d without a write)\n",
		fmtMS(s.Min), fmtMS(s.P50), fmtMS(s.P90), fmtMS(s.P99), fmtMS(s.Max), fmtMS(s.Mean), s.Count, r.Failed)
	p99 := time.Duration(s.P99 * float64(time.Millisecond))
	fmt.Fprintf(w, "target p99 <= 2s: %s\n", verdict(s.Count > 0 && r.Failed == 0 && p99 <= 2*time.Second))
	seen := map[string]bool{}
	for _, k := range r.Kills {
		for _, c := range sortedKeys(k.ErrorSamples) {
			if !seen[c] {
				seen[c] = true
				fmt.Fprintf(w, "first %s: %s\n", c, k.ErrorSamples[c])
			}
		}
	}
}
