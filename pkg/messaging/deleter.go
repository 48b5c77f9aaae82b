package messaging

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// batchDeleter groups deletes of handled messages into DeleteMessageBatch
// calls of up to ten, waiting at most linger for a batch to fill: one SQS
// request instead of ten, at the cost of a few milliseconds.
type batchDeleter struct {
	sqs      SQSClient
	queueURL string
	queue    string
	linger   time.Duration
	logger   *slog.Logger
	in       chan deleteReq
	done     chan struct{}
}

type deleteReq struct {
	receipt *string
	m       *Message
	// deleted is closed once the delete was attempted.
	deleted chan struct{}
}

func newBatchDeleter(c SQSClient, queueURL, queue string, linger time.Duration, logger *slog.Logger) *batchDeleter {
	d := &batchDeleter{sqs: c, queueURL: queueURL, queue: queue, linger: linger, logger: logger,
		in: make(chan deleteReq, 100), done: make(chan struct{})}
	go d.loop()
	return d
}

// delete queues a delete and waits until it was sent.
func (d *batchDeleter) delete(receipt *string, m *Message) {
	req := deleteReq{receipt: receipt, m: m, deleted: make(chan struct{})}
	d.in <- req
	<-req.deleted
}

// close flushes what is pending and stops the loop; call it after every
// delete has returned.
func (d *batchDeleter) close() {
	close(d.in)
	<-d.done
}

func (d *batchDeleter) loop() {
	defer close(d.done)
	var batch []deleteReq
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case req, ok := <-d.in:
			if !ok {
				d.flush(batch)
				return
			}
			batch = append(batch, req)
			if len(batch) == 1 {
				timer.Reset(d.linger)
			}
			if len(batch) == 10 {
				timer.Stop()
				d.flush(batch)
				batch = nil
			}
		case <-timer.C:
			d.flush(batch)
			batch = nil
		}
	}
}

func (d *batchDeleter) flush(batch []deleteReq) {
	if len(batch) == 0 {
		return
	}
	defer func() {
		for _, r := range batch {
			close(r.deleted)
		}
	}()
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: r.receipt}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(d.queueURL), Entries: entries})
	if err != nil {
		// The messages come back after their visibility timeout; handlers are idempotent.
		d.logger.Error("delete failed; messages will be redelivered", "queue", d.queue, "count", len(batch), "err", err)
		return
	}
	for _, f := range out.Failed {
		var i int
		fmt.Sscan(aws.ToString(f.Id), &i)
		if i >= 0 && i < len(batch) {
			d.logger.Error("delete failed; message will be redelivered", "queue", d.queue,
				"event_id", batch[i].m.EventID, "message_id", batch[i].m.MessageID, "code", aws.ToString(f.Code), "err", aws.ToString(f.Message))
		}
	}
}
