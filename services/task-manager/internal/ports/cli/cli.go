// Package cli is mediagw-ctl, the operator's view of the system: gateways,
// devices and their status, recording tasks, the latest segment of every
// channel, and the recordings of one channel in a time range. It only
// reads: the tables, the recordings bucket and the gateways' SSM
// parameter names and plain String values (never a SecureString's value),
// through the readers it is given (Sources, built in internal/wiring).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

// Settings say where things are: the same variables the services use.
type Settings struct {
	DeviceMediaURLTable string
	IPCameraTable       string
	RecordingsBucket    string
	KeyPrefix           string
	ParameterRoot       string
	LoginBudgetTable    string
	// The health-sentinel's incidents table and the queue of its mails.
	IncidentsTable string
	AlertMailQueue string
}

// Declare registers mediagw-ctl's settings with c; the defaults are the
// names in topology.json. The returned function gives them after Parse.
func Declare(c *service.Config) func() Settings {
	dm := c.String(topology.EnvName("deviceMediaURL", "TABLE"), "deviceMediaURL", "deviceMediaURL table")
	ip := c.String(topology.EnvName("ip-camera", "TABLE"), "ip-camera", "ip-camera table")
	bucket := c.String(topology.EnvName("mediagw-recordings", "BUCKET"), "mediagw-recordings", "recordings bucket")
	prefix := c.String("RECORDINGS_KEY_PREFIX", "recordings", "key prefix of the segments")
	root := c.String("PARAMETER_ROOT", "/mediagw", "root of the SSM parameters")
	budget := c.String(topology.EnvName("mediagw-login-budget", "TABLE"), "mediagw-login-budget", "login-budget table")
	incidents := c.String(topology.EnvName("mediagw-incidents", "TABLE"), "mediagw-incidents", "the health-sentinel's incidents table")
	mails := c.String(topology.EnvName("mediagw-alert-mail", "QUEUE_URL"), "", "queue of the alert mails (default: the queue named mediagw-alert-mail)")
	return func() Settings {
		return Settings{DeviceMediaURLTable: *dm, IPCameraTable: *ip, RecordingsBucket: *bucket, KeyPrefix: *prefix, ParameterRoot: *root,
			LoginBudgetTable: *budget, IncidentsTable: *incidents, AlertMailQueue: *mails}
	}
}

// Sources are what the commands read.
type Sources struct {
	// Channels is the deviceMediaURL table.
	Channels interface {
		Rows(ctx context.Context) ([]app.ChannelRow, []error, error)
	}
	// Devices is the ip-camera table.
	Devices interface {
		List(ctx context.Context) ([]domain.Device, []error, error)
	}
	// Recordings is the recordings bucket.
	Recordings interface {
		Latest(ctx context.Context, gateway, device, channel string) (app.Segment, bool, error)
		Between(ctx context.Context, gateway, device, channel string, from, to time.Time) ([]app.Segment, error)
	}
	// Gateways is the gateways' SSM parameters.
	Gateways interface {
		List(ctx context.Context) ([]app.GatewayInfo, error)
	}
	// Logins is the login-budget table: who logged in to each gateway and
	// what the gateway refused.
	Logins interface {
		Ledger(ctx context.Context, gatewayID string) (loginbudget.Ledger, error)
	}
	// Incidents is the health-sentinel's incidents table.
	Incidents interface {
		List(ctx context.Context) ([]app.Incident, []error, error)
	}
	// Alerts is the queue of the alert mails.
	Alerts interface {
		List(ctx context.Context) ([]app.AlertMail, error)
	}
}

// Env is what a run of the CLI gets from its surroundings.
type Env struct {
	Stdout, Stderr io.Writer
	Now            func() time.Time
	// Open builds the readers for the parsed settings.
	Open func(ctx context.Context, s Settings) (Sources, error)
}

const (
	name    = "mediagw-ctl"
	summary = "look at mediagw: gateways, devices, recording tasks, recordings"
)

const usage = `Usage: mediagw-ctl [settings] <command> [flags]

Commands:
  mediagw-ctl gateways                     gateways with their devices, recording tasks and login state
  mediagw-ctl devices    [--gateway G]     every camera channel and its status (deviceMediaURL)
  mediagw-ctl tasks      [--gateway G]     recording tasks and their state (ip-camera)
  mediagw-ctl latest     [--gateway G] [--device D]
                                           the newest segment in S3 of every channel
  mediagw-ctl recordings --gateway G --device D --channel C [--last 1h | --from T [--to T]]
                                           segments of one channel in a time range, with gaps
  mediagw-ctl incidents  [--gateway G] [--key K] [--since 24h]
                                           open incidents and those resolved since, with their steps
  mediagw-ctl alerts     [--since 24h] [--body]
                                           the alert mails sent (subjects; --body: whole mails)

Times are RFC 3339 (2026-03-01T12:00:00Z) or a duration ago (90m).
Settings come from the environment, or from their flags given before the command.

`

func printUsage(w io.Writer, c *service.Config) {
	fmt.Fprint(w, usage)
	c.Usage(w)
}

type options struct {
	gateway, device, channel string
	from, to, last           string
	key, since               string
	body                     bool
}

// Run runs one command and returns the exit code: 0, 1 for a failure, 2
// for bad usage.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	cfg := service.NewCommandConfig(name, summary)
	settings := Declare(cfg)
	cfg.AllowArgs()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(env.Stdout, cfg)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if err := cfg.Parse(args, env.Stdout); err != nil {
		if errors.Is(err, service.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		return 2
	}
	rest := cfg.Args()
	if len(rest) == 0 {
		fmt.Fprintf(env.Stderr, "%s: no command\n\n", name)
		printUsage(env.Stderr, cfg)
		return 2
	}
	cmd := rest[0]
	commands := map[string]func(context.Context, *client, options) error{
		"gateways": gateways, "devices": devices, "tasks": tasks, "latest": latestCmd, "recordings": recordings,
		"incidents": incidents, "alerts": alerts,
	}
	run, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: unknown command %q\n\n", name, cmd)
		printUsage(env.Stderr, cfg)
		return 2
	}
	var o options
	fs := flag.NewFlagSet(name+" "+cmd, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&o.gateway, "gateway", "", "only this gateway")
	fs.StringVar(&o.device, "device", "", "only this device")
	fs.StringVar(&o.channel, "channel", "", "channel (recordings)")
	fs.StringVar(&o.from, "from", "", "start of the range (recordings)")
	fs.StringVar(&o.to, "to", "", "end of the range (recordings; default now)")
	fs.StringVar(&o.last, "last", "", "the range is this long and ends now (recordings; default 1h)")
	fs.StringVar(&o.key, "key", "", "only this incident key, e.g. gateway/gw-1 (incidents)")
	fs.StringVar(&o.since, "since", "24h", "resolved incidents and mails since this time or this long ago (incidents, alerts)")
	fs.BoolVar(&o.body, "body", false, "print whole mails (alerts)")
	if err := fs.Parse(rest[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "%s %s: unexpected argument %q\n", name, cmd, fs.Arg(0))
		return 2
	}
	src, err := env.Open(ctx, settings())
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", name, err)
		return 1
	}
	c := &client{env: env, src: src}
	if err := run(ctx, c, o); err != nil {
		fmt.Fprintf(env.Stderr, "%s %s: %v\n", name, cmd, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

type client struct {
	env Env
	src Sources
}

func (c *client) table(w func(*tabwriter.Writer)) {
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	w(tw)
	_ = tw.Flush()
}

func (c *client) warn(bad []error) {
	for _, b := range bad {
		fmt.Fprintf(c.env.Stderr, "warning: %v\n", b)
	}
}

func (c *client) channelRows(ctx context.Context, o options) ([]app.ChannelRow, error) {
	rows, bad, err := c.src.Channels.Rows(ctx)
	if err != nil {
		return nil, err
	}
	c.warn(bad)
	out := rows[:0]
	for _, r := range rows {
		if (o.gateway == "" || r.Gateway == o.gateway) && (o.device == "" || r.Device == o.device) {
			out = append(out, r)
		}
	}
	return out, nil
}

func gateways(ctx context.Context, c *client, o options) error {
	type gw struct {
		name, ip      string
		password      loginbudget.Credential
		recording     int
		lastChange    time.Time
		seenDevices   map[string]bool
		onlineDevices map[string]bool
	}
	all := map[string]*gw{}
	get := func(id string) *gw {
		g := all[id]
		if g == nil {
			g = &gw{seenDevices: map[string]bool{}, onlineDevices: map[string]bool{}}
			all[id] = g
		}
		return g
	}
	params, err := c.src.Gateways.List(ctx)
	if err != nil {
		return err
	}
	for _, p := range params {
		g := get(p.ID)
		g.name, g.ip = p.Name, p.ExternalIP
		if p.PasswordParameter != "" {
			g.password = loginbudget.CredentialOf(p.PasswordParameter, p.PasswordVersion)
		}
	}
	rows, err := c.channelRows(ctx, options{})
	if err != nil {
		return err
	}
	for _, r := range rows {
		g := get(r.Gateway)
		g.seenDevices[r.Device] = true
		if r.Status == app.ChannelOnline {
			g.onlineDevices[r.Device] = true
		}
		if r.LastChange.After(g.lastChange) {
			g.lastChange = r.LastChange
		}
	}
	devs, bad, err := c.src.Devices.List(ctx)
	if err != nil {
		return err
	}
	c.warn(bad)
	for _, d := range devs {
		if d.Task != nil {
			get(d.Gateway).recording++
		}
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		if id != "" && (o.gateway == "" || id == o.gateway) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	now := c.env.Now()
	logins := map[string]loginState{}
	for _, id := range ids {
		st, err := c.loginState(ctx, id, all[id].password, now)
		if err != nil {
			return err
		}
		logins[id] = st
	}
	c.table(func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "GATEWAY\tNAME\tEXTERNAL IP\tLOGIN\tFAILED LOGINS (30m)\tDEVICES\tONLINE\tRECORDING\tLAST CHANGE")
		for _, id := range ids {
			g := all[id]
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", id, dash(g.name), dash(g.ip), logins[id].state, logins[id].failures,
				len(g.seenDevices), len(g.onlineDevices), g.recording, ago(now, g.lastChange))
		}
	})
	for _, id := range ids {
		if l := logins[id]; l.detail != "" {
			fmt.Fprintf(c.env.Stdout, "\n%s: %s\n", id, l.detail)
		}
	}
	return nil
}

// loginState is a gateway's standing with the login budget, for people.
type loginState struct {
	state    string // "ok", "credentials-rejected", "budget-spent", "locked", "-"
	failures int
	detail   string // what it means and what to do; "" when all is well
}

func (c *client) loginState(ctx context.Context, id string, password loginbudget.Credential, now time.Time) (loginState, error) {
	if c.src.Logins == nil {
		return loginState{state: "-"}, nil
	}
	l, err := c.src.Logins.Ledger(ctx, id)
	if err != nil {
		return loginState{}, err
	}
	st := loginState{state: "-", failures: l.Failures(now, loginbudget.Limits{})}
	if password == "" {
		return st, nil
	}
	r := l.Check(password, now, loginbudget.Limits{})
	switch {
	case r == nil && l.Accepted == password:
		st.state = "ok"
	case r == nil:
		st.state = "untried"
	case r.Reason == loginbudget.ReasonBusy:
		st.state = "logging-in"
	case r.Reason == loginbudget.ReasonRejected:
		st.state = "credentials-rejected"
		st.detail = fmt.Sprintf("credentials-rejected: the gateway rejected the password in %s (version %s); no component logs in with it again. "+
			"Put the gateway's admin password into that parameter (aws ssm put-parameter --name %s --type SecureString --overwrite --value ...): "+
			"every component tries the new version at once.", password.Parameter(), versionOf(password), password.Parameter())
	default:
		st.state = string(r.Reason)
		st.detail = fmt.Sprintf("%s: %s", r.Reason, r.String())
	}
	return st, nil
}

func versionOf(c loginbudget.Credential) string {
	s := string(c)
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[i+1:]
	}
	return "?"
}

func devices(ctx context.Context, c *client, o options) error {
	rows, err := c.channelRows(ctx, o)
	if err != nil {
		return err
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Gateway < rows[j].Gateway })
	now := c.env.Now()
	c.table(func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "GATEWAY\tDEVICE\tCH\tSTATUS\tMEDIA URL\tLAST CHANGE\tFIRST SEEN")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Gateway, r.Device, r.Channel, dash(r.Status), safeURL(r.MediaURL),
				ago(now, r.LastChange), stamp(r.FirstSeen))
		}
	})
	return nil
}

func tasks(ctx context.Context, c *client, o options) error {
	devs, bad, err := c.src.Devices.List(ctx)
	if err != nil {
		return err
	}
	c.warn(bad)
	sort.Slice(devs, func(i, j int) bool {
		if devs[i].Gateway != devs[j].Gateway {
			return devs[i].Gateway < devs[j].Gateway
		}
		return devs[i].Index < devs[j].Index
	})
	now := c.env.Now()
	c.table(func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "GATEWAY\tDEVICE\tWANT\tSTATUS\tTASK\tLAUNCHER\tCHANNELS\tSTARTED\tFAILURES\tNEXT TRY\tLAST EXIT")
		for _, d := range devs {
			if (o.gateway != "" && d.Gateway != o.gateway) || (o.device != "" && d.Index != o.device) {
				continue
			}
			task, launcherName, chans, started := "-", "-", channelList(domain.ChannelNumbers(d.Channels)), "-"
			if d.Task != nil {
				task, launcherName, chans, started = shortTask(d.Task.ID), d.Task.Launcher, channelList(d.Task.Channels), ago(now, d.Task.StartedAt)
			}
			next := "-"
			if !d.NextAttempt.IsZero() && d.NextAttempt.After(now) {
				next = "in " + round(d.NextAttempt.Sub(now))
			}
			last := "-"
			if d.LastReason != "" {
				last = fmt.Sprintf("%d (%s)", d.LastExit, d.LastReason)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", dash(d.Gateway), d.Index, dash(string(d.Want)), d.Status,
				task, dash(launcherName), chans, started, len(d.Failures), next, last)
		}
	})
	var shown []domain.Device
	for _, d := range devs {
		if (o.gateway == "" || d.Gateway == o.gateway) && (o.device == "" || d.Index == o.device) {
			shown = append(shown, d)
		}
	}
	if carried := taskLines(shown); len(carried) > 0 {
		fmt.Fprintln(c.env.Stdout)
		c.table(func(w *tabwriter.Writer) {
			fmt.Fprintln(w, "TASK\tLAUNCHER\tGATEWAY\tDEVICES\tCHANNELS\tCARRIES")
			for _, l := range carried {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", shortTask(l.id), dash(l.launcher), dash(l.gateway), l.devices, l.channels, l.carries)
			}
		})
	}
	return nil
}

// taskLine is one recording task and what it records.
type taskLine struct {
	id, launcher, gateway string
	devices, channels     int
	carries               string // <device>:<channel>,… for each device, by device
}

// taskLines groups the devices by the task their rows name: which channels
// each task carries (a packed task carries several devices).
func taskLines(devs []domain.Device) []taskLine {
	byTask := map[string]*taskLine{}
	var order []string
	for _, d := range devs {
		if d.Task == nil {
			continue
		}
		l := byTask[d.Task.ID]
		if l == nil {
			l = &taskLine{id: d.Task.ID, launcher: d.Task.Launcher, gateway: d.Gateway}
			byTask[d.Task.ID] = l
			order = append(order, d.Task.ID)
		}
		l.devices++
		l.channels += len(d.Task.Channels)
		if l.carries != "" {
			l.carries += " "
		}
		l.carries += d.Index + ":" + channelList(d.Task.Channels)
	}
	sort.Strings(order)
	out := make([]taskLine, len(order))
	for i, id := range order {
		out[i] = *byTask[id]
	}
	return out
}

func latestCmd(ctx context.Context, c *client, o options) error {
	rows, err := c.channelRows(ctx, o)
	if err != nil {
		return err
	}
	type result struct {
		seg   app.Segment
		found bool
		err   error
	}
	results := make([]result, len(rows))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, r := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s, ok, err := c.src.Recordings.Latest(ctx, r.Gateway, r.Device, strconv.Itoa(int(r.Channel)))
			results[i] = result{s, ok, err}
		}()
	}
	wg.Wait()
	now := c.env.Now()
	var errs []error
	c.table(func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "GATEWAY\tDEVICE\tCH\tSTATUS\tLATEST SEGMENT\tDURATION\tENDED\tSIZE\tKEY")
		for i, r := range rows {
			res := results[i]
			switch {
			case res.err != nil:
				errs = append(errs, res.err)
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t(error)\t-\t-\t-\t-\n", r.Gateway, r.Device, r.Channel, dash(r.Status))
			case !res.found:
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\tnone\t-\t-\t-\t-\n", r.Gateway, r.Device, r.Channel, dash(r.Status))
			default:
				s := res.seg
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Gateway, r.Device, r.Channel, dash(r.Status),
					stamp(s.Start), s.Duration.Round(time.Millisecond), ago(now, s.End()), humanBytes(s.Size), s.Key)
			}
		}
	})
	return errors.Join(errs...)
}

func recordings(ctx context.Context, c *client, o options) error {
	if o.gateway == "" || o.device == "" || o.channel == "" {
		return usageError{errors.New("--gateway, --device and --channel are required")}
	}
	now := c.env.Now()
	from, to, err := timeRange(o, now)
	if err != nil {
		return usageError{err}
	}
	segs, err := c.src.Recordings.Between(ctx, o.gateway, o.device, o.channel, from, to)
	if err != nil {
		return err
	}
	var total time.Duration
	gaps := 0
	var gapTotal time.Duration
	c.table(func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "START\tEND\tDURATION\tGAP BEFORE\tSIZE\tKEY")
		for i, s := range segs {
			gap := "-"
			if i > 0 {
				d := s.Start.Sub(segs[i-1].End())
				gap = d.Round(time.Millisecond).String()
				if d > time.Second || d < -time.Second {
					gaps++
					gapTotal += max(d, 0)
				}
			}
			total += s.Duration
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", stamp(s.Start), stamp(s.End()), s.Duration.Round(time.Millisecond), gap, humanBytes(s.Size), s.Key)
		}
	})
	fmt.Fprintf(c.env.Stdout, "\n%d segments from %s to %s: %s recorded, %d gaps over 1 s (%s missing)\n",
		len(segs), stamp(from), stamp(to), total.Round(time.Second), gaps, gapTotal.Round(time.Second))
	return nil
}

func timeRange(o options, now time.Time) (from, to time.Time, err error) {
	to = now
	if o.to != "" {
		if to, err = parseWhen(o.to, now); err != nil {
			return from, to, fmt.Errorf("--to: %w", err)
		}
	}
	switch {
	case o.from != "" && o.last != "":
		return from, to, errors.New("give --from or --last, not both")
	case o.from != "":
		if from, err = parseWhen(o.from, now); err != nil {
			return from, to, fmt.Errorf("--from: %w", err)
		}
	default:
		last := time.Hour
		if o.last != "" {
			if last, err = time.ParseDuration(o.last); err != nil || last <= 0 {
				return from, to, fmt.Errorf("--last: %q is not a positive duration", o.last)
			}
		}
		from = to.Add(-last)
	}
	if !from.Before(to) {
		return from, to, errors.New("the range ends before it starts")
	}
	return from, to, nil
}

// parseWhen reads an RFC 3339 time, or a duration meaning that long ago.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration ago", s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if d := now.Sub(t); d >= 0 {
		return round(d) + " ago"
	}
	return "in " + round(t.Sub(now))
}

func round(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

func channelList(chs []int32) string {
	if len(chs) == 0 {
		return "-"
	}
	s := make([]string, len(chs))
	for i, c := range chs {
		s[i] = strconv.Itoa(int(c))
	}
	return strings.Join(s, ",")
}

// shortTask is the task id without the ARN's boilerplate.
func shortTask(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 && strings.HasPrefix(id, "arn:") {
		return id[i+1:]
	}
	return id
}

// safeURL shows a media URL without credentials, should one carry some.
func safeURL(u string) string {
	clean, _, err := domain.CleanMediaURL(u)
	if err != nil {
		return "(unusable URL)"
	}
	return clean
}
