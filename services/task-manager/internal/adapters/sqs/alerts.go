// Package sqs reads the alert mails for mediagw-ctl from the queue
// subscribed to the alert-email topic (mediagw-alert-mail), without
// deleting them: the mails read are hidden while the reader goes through
// the queue, then made visible again at once, so each mail stays for the
// next reader until the queue's retention (4 days) ends it.
package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"mediagw/services/task-manager/internal/app"
)

// Client is the part of the SQS client the reader uses.
type Client interface {
	ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, opts ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	GetQueueUrl(ctx context.Context, in *awssqs.GetQueueUrlInput, opts ...func(*awssqs.Options)) (*awssqs.GetQueueUrlOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *awssqs.ChangeMessageVisibilityBatchInput, opts ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error)
}

// Alerts reads one queue's mails.
type Alerts struct {
	api        Client
	url, name  string
	visibility int32
}

// NewAlerts returns the reader of the queue at url (or, when url is empty,
// of the queue named name).
func NewAlerts(api Client, url, name string) *Alerts {
	return &Alerts{api: api, url: url, name: name, visibility: 20}
}

// List returns the mails in the queue, oldest first. Messages read stay
// invisible for a few seconds, then return for the next reader.
func (a *Alerts) List(ctx context.Context) ([]app.AlertMail, error) {
	url := a.url
	if url == "" {
		out, err := a.api.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(a.name)})
		if err != nil {
			return nil, fmt.Errorf("queue %s (set ALERT_MAIL_QUEUE_URL): %w", a.name, err)
		}
		url = aws.ToString(out.QueueUrl)
	}
	seen := map[string]bool{}
	var mails []app.AlertMail
	var receipts []string
	defer func() { a.release(context.WithoutCancel(ctx), url, receipts) }()
	for {
		out, err := a.api.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			VisibilityTimeout: a.visibility, WaitTimeSeconds: 1})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", url, err)
		}
		fresh := 0
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id], fresh = true, fresh+1
			receipts = append(receipts, aws.ToString(m.ReceiptHandle))
			var env struct {
				MessageID string `json:"MessageId"`
				Subject   string `json:"Subject"`
				Message   string `json:"Message"`
				Timestamp string `json:"Timestamp"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				mails = append(mails, app.AlertMail{ID: id, Subject: "(not an SNS notification)", Body: aws.ToString(m.Body)})
				continue
			}
			sent, _ := time.Parse(time.RFC3339Nano, env.Timestamp)
			mails = append(mails, app.AlertMail{ID: env.MessageID, Sent: sent, Subject: env.Subject, Body: env.Message})
		}
		if fresh == 0 {
			break
		}
	}
	sort.SliceStable(mails, func(i, j int) bool { return mails[i].Sent.Before(mails[j].Sent) })
	return mails, nil
}

// release makes the mails read visible again for the next reader; one
// not released returns by itself after the visibility timeout.
func (a *Alerts) release(ctx context.Context, url string, receipts []string) {
	for len(receipts) > 0 {
		n := min(10, len(receipts))
		var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
		for i, r := range receipts[:n] {
			entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r), VisibilityTimeout: 0})
		}
		_, _ = a.api.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
		receipts = receipts[n:]
	}
}
