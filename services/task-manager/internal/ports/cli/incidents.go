package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"mediagw/services/task-manager/internal/app"
)

// incidents lists the health-sentinel's open incidents and those resolved
// since --since, each with what mediagw did about it; --key shows one key
// with its history.
func incidents(ctx context.Context, c *client, o options) error {
	if c.src.Incidents == nil {
		return errors.New("no incidents table configured (INCIDENTS_TABLE)")
	}
	now := c.env.Now()
	since, err := parseWhen(o.since, now)
	if err != nil {
		return usageError{fmt.Errorf("--since: %w", err)}
	}
	all, bad, err := c.src.Incidents.List(ctx)
	if err != nil {
		return err
	}
	c.warn(bad)
	var shown []app.Incident
	for _, inc := range all {
		if inc.ID == "" || (o.gateway != "" && inc.Gateway != o.gateway) || (o.key != "" && inc.Key != o.key) {
			continue
		}
		if inc.State == "open" || !inc.Resolved.Before(since) || o.key != "" {
			shown = append(shown, inc)
		}
	}
	// Open first, then the newest.
	sort.Slice(shown, func(i, j int) bool {
		if (shown[i].State == "open") != (shown[j].State == "open") {
			return shown[i].State == "open"
		}
		return shown[i].Opened.After(shown[j].Opened)
	})
	if len(shown) == 0 {
		fmt.Fprintf(c.env.Stdout, "no open incidents, none resolved since %s\n", stamp(since))
		return nil
	}
	c.table(func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "KEY\tSTATE\tWHAT\tOPENED\tDURATION\tCAMERAS\tMAILS")
		for _, inc := range shown {
			state := inc.State
			if inc.Merged != "" {
				state = "merged"
			}
			end := inc.Resolved
			if end.IsZero() {
				end = now
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", inc.Key, state, inc.Title, ago(now, inc.Opened), round(end.Sub(inc.Opened)),
				len(inc.Cameras), mailList(inc.Mails))
		}
	})
	for _, inc := range shown {
		fmt.Fprintf(c.env.Stdout, "\n%s  %s\n", inc.ID, inc.Title)
		if inc.Detail != "" {
			fmt.Fprintf(c.env.Stdout, "  detail:   %s\n", inc.Detail)
		}
		if len(inc.Cameras) > 0 {
			fmt.Fprintf(c.env.Stdout, "  cameras:  %s\n", strings.Join(inc.Cameras, ", "))
		}
		if !inc.Resolved.IsZero() {
			fmt.Fprintf(c.env.Stdout, "  resolved: %s (%s)\n", stamp(inc.Resolved), dash(inc.Cleared))
		}
		if inc.Merged != "" {
			fmt.Fprintf(c.env.Stdout, "  part of:  %s\n", inc.Merged)
		}
		if inc.Missed != "" {
			fmt.Fprintf(c.env.Stdout, "  missed:   %s\n", inc.Missed)
		}
		for _, e := range inc.Exits {
			fmt.Fprintf(c.env.Stdout, "  exit:     %s code %d task %s %s\n", stamp(e.At), e.Code, e.TaskID, e.LogStream)
		}
		for _, s := range inc.Steps {
			out := ""
			if s.Outcome != "" {
				out = ": " + s.Outcome
			}
			fmt.Fprintf(c.env.Stdout, "  step:     %s %s%s\n", stamp(s.At), s.What, out)
		}
		if o.key != "" {
			for _, h := range inc.History {
				fmt.Fprintf(c.env.Stdout, "  earlier:  %s  %s, %s (missed: %s)\n", h.ID, h.Title, round(h.Resolved.Sub(h.Opened)), dash(h.Missed))
			}
		}
	}
	return nil
}

func mailList(ms []app.IncidentMail) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Kind+":"+m.State)
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

// alerts prints the alert mails sent since --since, oldest first.
func alerts(ctx context.Context, c *client, o options) error {
	if c.src.Alerts == nil {
		return errors.New("no alert-mail queue configured (ALERT_MAIL_QUEUE_URL)")
	}
	now := c.env.Now()
	since, err := parseWhen(o.since, now)
	if err != nil {
		return usageError{fmt.Errorf("--since: %w", err)}
	}
	mails, err := c.src.Alerts.List(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, m := range mails {
		if !m.Sent.IsZero() && m.Sent.Before(since) {
			continue
		}
		n++
		if o.body {
			fmt.Fprintf(c.env.Stdout, "=== %s  %s\n%s\n", stamp(m.Sent), m.Subject, strings.TrimRight(m.Body, "\n"))
			fmt.Fprintln(c.env.Stdout)
			continue
		}
		fmt.Fprintf(c.env.Stdout, "%s  %s\n", stamp(m.Sent), m.Subject)
	}
	if n == 0 {
		fmt.Fprintf(c.env.Stdout, "no alert mails since %s\n", stamp(since))
	}
	return nil
}
