package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// alertMail is one alert mail as the mediagw-alert-mail queue holds it: the
// SNS notification around what the health-sentinel published to
// mediagw-alert-email, read as `mediagw-ctl alerts` reads it (whose reader
// is internal to the task-manager's module, hence this small copy).
type alertMail struct {
	ID       string    // the SNS MessageId: one per publish
	Sent     time.Time // the SNS Timestamp: when it was published
	Received time.Time // when the test read it
	Subject  string
	Body     string
}

func (m alertMail) String() string {
	return fmt.Sprintf("%s %q", m.Sent.Format("15:04:05.000"), m.Subject)
}

// mailbox reads the alert-mail queue in the background and keeps every
// mail. Unlike `mediagw-ctl alerts` it deletes what it read (nobody else
// reads this queue in the test); a message delivered again after a failed
// delete is recognised by its SQS id and not counted twice, while a mail
// published twice (two SNS ids) is.
type mailbox struct {
	sqs *sqs.Client
	url string

	mu    sync.Mutex
	mails []alertMail
	seen  map[string]bool // SQS message ids
	bad   []string        // bodies that were no SNS notification
}

// startMailbox reads the queue at url until t's cleanup.
func startMailbox(t *testing.T, cfg aws.Config, url string) *mailbox {
	t.Helper()
	if url == "" {
		t.Fatal("no mediagw-alert-mail queue in the provisioned topology")
	}
	m := &mailbox{sqs: sqs.NewFromConfig(cfg), url: url, seen: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.run(ctx, t)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return m
}

func (m *mailbox) run(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		out, err := m.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(m.url),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			if ctx.Err() == nil {
				t.Logf("mailbox: receive: %v", err) // the emulator is busy: try again
				time.Sleep(500 * time.Millisecond)
			}
			continue
		}
		now := time.Now()
		for _, msg := range out.Messages {
			var env struct {
				Type      string `json:"Type"`
				MessageID string `json:"MessageId"`
				Subject   string `json:"Subject"`
				Message   string `json:"Message"`
				Timestamp string `json:"Timestamp"`
			}
			body := aws.ToString(msg.Body)
			m.mu.Lock()
			if !m.seen[aws.ToString(msg.MessageId)] {
				m.seen[aws.ToString(msg.MessageId)] = true
				if err := json.Unmarshal([]byte(body), &env); err != nil || env.Type != "Notification" {
					m.bad = append(m.bad, body)
				} else {
					sent, _ := time.Parse(time.RFC3339Nano, env.Timestamp)
					m.mails = append(m.mails, alertMail{ID: env.MessageID, Sent: sent, Received: now, Subject: env.Subject, Body: env.Message})
				}
			}
			m.mu.Unlock()
			if _, err := m.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(m.url), ReceiptHandle: msg.ReceiptHandle}); err != nil && ctx.Err() == nil {
				t.Logf("mailbox: delete: %v", err) // delivered again later, and recognised
			}
		}
	}
}

// all returns the mails read so far, in the order read.
func (m *mailbox) all() []alertMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]alertMail(nil), m.mails...)
}

// matching returns the mails whose subject contains every one of parts.
func (m *mailbox) matching(parts ...string) []alertMail {
	var out []alertMail
	for _, ml := range m.all() {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(ml.Subject, p)
		}
		if ok {
			out = append(out, ml)
		}
	}
	return out
}

// await waits until a mail whose subject contains every one of parts has
// been read, and returns the first.
func (m *mailbox) await(t *testing.T, what string, within time.Duration, parts ...string) alertMail {
	t.Helper()
	var got alertMail
	eventually(t, what, within, func() error {
		ms := m.matching(parts...)
		if len(ms) == 0 {
			return fmt.Errorf("no mail with %q in its subject; mails so far: %v", parts, m.all())
		}
		got = ms[0]
		return nil
	})
	return got
}

// notMail lists what the queue held that was no SNS notification.
func (m *mailbox) notMail() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.bad...)
}
