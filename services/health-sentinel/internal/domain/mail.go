package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxSubject is the longest subject a mail gets, in characters.
const MaxSubject = 100

// Message is a mail as it goes to the alert-email topic.
type Message struct {
	Subject string
	Body    string
}

// Render writes the mail of kind for inc at now. ctl is the command
// operators run (mediagw-ctl).
func Render(kind string, inc Incident, now time.Time) Message {
	what := subjectOf(inc)
	var subject string
	switch kind {
	case MailResolved:
		subject = fmt.Sprintf("[mediagw] RESOLVED %s after %s", what, round(inc.Duration(now)))
	case MailGaveUp:
		subject = fmt.Sprintf("[mediagw] ACTION NEEDED %s: automatic recovery gave up", what)
	default:
		subject = "[mediagw] " + what
	}
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	switch kind {
	case MailResolved:
		line("Resolved: %s — %s.", what, orDash(inc.ClearedBy))
	case MailGaveUp:
		line("mediagw stopped trying to recover %s by itself: people must act.", where(inc))
	default:
		line("%s.", capitalize(what))
	}
	line("")
	line("Since:        %s", inc.Opened.UTC().Format("2006-01-02 15:04:05 UTC"))
	if kind == MailResolved {
		line("Resolved at:  %s", inc.Resolved.UTC().Format("2006-01-02 15:04:05 UTC"))
		line("Duration:     %s", round(inc.Duration(now)))
		line("Footage missed: %s", orDash(inc.Missed))
	} else {
		line("For:          %s so far", round(inc.Duration(now)))
	}
	if inc.Detail != "" {
		line("Detail:       %s", inc.Detail)
	}
	line("Cameras:      %s", cameras(inc))
	if len(inc.Exits) > 0 {
		line("")
		line("Last exits of the recording task:")
		for _, e := range inc.Exits {
			ls := ""
			if e.LogStream != "" {
				ls = ", log stream " + e.LogStream
			}
			line("  - %s  exit code %d (task %s%s)", e.At.UTC().Format("15:04:05"), e.Code, e.TaskID, ls)
		}
	}
	line("")
	line("What mediagw did:")
	if len(inc.Steps) == 0 {
		line("  - %s", didByDefault(inc))
	}
	for _, s := range inc.Steps {
		out := ""
		if s.Outcome != "" {
			out = ": " + s.Outcome
		}
		line("  - %s  %s%s", s.At.UTC().Format("15:04:05"), s.What, out)
	}
	line("")
	line("What to do:")
	line("  %s", advice(kind, inc))
	line("")
	line("Look closer:")
	for _, c := range commands(inc) {
		line("  %s", c)
	}
	line("")
	line("Incident %s", inc.ID)
	return Message{Subject: Truncate(subject, MaxSubject), Body: b.String()}
}

// RenderDigest is the one mail that stands for those the storm limit held back.
func RenderDigest(gateway string, lines []string, window time.Duration) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "More than the allowed number of mails about gateway %s fell within %s; these were held back:\n\n", gateway, window)
	for _, l := range lines {
		fmt.Fprintf(&b, "  - %s\n", l)
	}
	fmt.Fprintf(&b, "\nLook closer:\n  mediagw-ctl incidents --gateway %s\n  mediagw-ctl alerts\n", gateway)
	return Message{Subject: Truncate(fmt.Sprintf("[mediagw] %s: %d more alerts (digest)", gateway, len(lines)), MaxSubject), Body: b.String()}
}

// DigestLine is a held-back mail's line in the digest.
func DigestLine(kind string, inc Incident, now time.Time) string {
	return fmt.Sprintf("%s %s: %s (%s)", now.UTC().Format("15:04:05"), kind, subjectOf(inc), inc.ID)
}

// Truncate cuts s to at most n characters, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

func subjectOf(inc Incident) string {
	switch inc.Kind {
	case KindCamera:
		gw := ""
		if inc.Gateway != "" {
			gw = " on gateway " + inc.Gateway
		}
		if inc.CrashLoop {
			return fmt.Sprintf("camera %s%s: recording crash loop, restarts paused", inc.Device, gw)
		}
		return fmt.Sprintf("camera %s%s: %s", inc.Device, gw, inc.Title)
	default:
		return fmt.Sprintf("gateway %s: %s", inc.Gateway, inc.Title)
	}
}

func where(inc Incident) string {
	if inc.Kind == KindCamera {
		return "camera " + inc.Device
	}
	return "gateway " + inc.Gateway
}

func cameras(inc Incident) string {
	if len(inc.Cameras) == 0 {
		if inc.Kind == KindGateway {
			return "every camera of the gateway"
		}
		return "-"
	}
	return fmt.Sprintf("%s (%d)", strings.Join(inc.Cameras, ", "), len(inc.Cameras))
}

func didByDefault(inc Incident) string {
	switch inc.Kind {
	case KindGateway:
		return "nothing yet; the health check confirms the outage before recovery starts"
	case KindCamera:
		return "the task-manager restarts the recording task with backoff"
	case KindConfig:
		return "the configurator retries the settings"
	case KindCredentials:
		return "every component stopped logging in with the rejected password (the login budget)"
	}
	return "nothing"
}

func advice(kind string, inc Incident) string {
	if kind == MailResolved {
		return "Nothing. Check the footage missed above if it matters."
	}
	if kind == MailGaveUp {
		return "Check the gateway's instance (EC2 console: status checks, system log, security groups) and its network; " +
			"when it answers again mediagw resumes by itself."
	}
	switch inc.Kind {
	case KindGateway:
		return "Nothing yet: mediagw recovers the gateway by itself (ISAPI reboot, EC2 reboot, replacement from the newest snapshot). " +
			"Act if an ACTION NEEDED mail follows."
	case KindCamera:
		if inc.CrashLoop {
			return "The task-manager stopped restarting this camera's task. Check the camera (power, network, stream settings) " +
				"and the task's log stream; recording resumes by itself after the cooldown."
		}
		return "Check the camera (power, network, stream settings) and the task's log stream."
	case KindConfig:
		return fmt.Sprintf("Check the gateway's parameters under /mediagw/gateways/%s/ (the detail says which step failed).", inc.Gateway)
	case KindCredentials:
		return fmt.Sprintf("Put the gateway's real admin password into /mediagw/gateways/%s/Password (a new version is tried at once). "+
			"Do not try passwords by hand: the gateway locks its admin account for 30 minutes after 5 failed logins.", inc.Gateway)
	}
	return "Read the detail above."
}

func commands(inc Incident) []string {
	out := []string{"mediagw-ctl incidents --key " + inc.Key}
	switch inc.Kind {
	case KindCamera:
		out = append(out, "mediagw-ctl tasks", "mediagw-ctl latest")
	default:
		out = append(out, "mediagw-ctl gateways")
	}
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func round(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}
