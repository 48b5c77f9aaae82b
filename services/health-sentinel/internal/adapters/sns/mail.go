// Package sns sends alert mails to the alert-email topic
// (mediagw-alert-email), and subscribes the ALERT_EMAIL address to it.
// A mail is a plain SNS message with a Subject: SNS email subscribers get
// it as a mail, and mediagw-ctl alerts reads it from a queue subscribed
// to the same topic.
package sns

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"

	"mediagw/services/health-sentinel/internal/domain"
)

// Client is the part of the SNS client the mailer uses.
type Client interface {
	Publish(ctx context.Context, in *awssns.PublishInput, opts ...func(*awssns.Options)) (*awssns.PublishOutput, error)
	Subscribe(ctx context.Context, in *awssns.SubscribeInput, opts ...func(*awssns.Options)) (*awssns.SubscribeOutput, error)
	ListSubscriptionsByTopic(ctx context.Context, in *awssns.ListSubscriptionsByTopicInput, opts ...func(*awssns.Options)) (*awssns.ListSubscriptionsByTopicOutput, error)
}

// Mailer is app.Mailer on one topic.
type Mailer struct {
	api   Client
	topic string
}

// NewMailer returns the mailer of topicARN.
func NewMailer(api Client, topicARN string) *Mailer { return &Mailer{api: api, topic: topicARN} }

// Send publishes one mail. SNS email subjects must be printable ASCII;
// the domain keeps them under 100 characters.
func (m *Mailer) Send(ctx context.Context, msg domain.Message) error {
	_, err := m.api.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(m.topic), Subject: aws.String(ascii(msg.Subject)), Message: aws.String(msg.Body)})
	if err != nil {
		return fmt.Errorf("publish mail to %s: %w", m.topic, err)
	}
	return nil
}

// EnsureEmail subscribes address to the topic unless it is subscribed
// (or pending confirmation) already. SNS mails the address a confirmation
// link; mails reach it once that is followed.
func (m *Mailer) EnsureEmail(ctx context.Context, address string) (already bool, err error) {
	p := awssns.NewListSubscriptionsByTopicPaginator(m.api, &awssns.ListSubscriptionsByTopicInput{TopicArn: aws.String(m.topic)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("subscriptions of %s: %w", m.topic, err)
		}
		for _, s := range page.Subscriptions {
			if aws.ToString(s.Protocol) == "email" && aws.ToString(s.Endpoint) == address {
				return true, nil
			}
		}
	}
	if _, err := m.api.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(m.topic), Protocol: aws.String("email"), Endpoint: aws.String(address)}); err != nil {
		return false, fmt.Errorf("subscribe %s to %s: %w", address, m.topic, err)
	}
	return false, nil
}

// ascii replaces what an SNS subject may not hold (non-ASCII, control
// characters) by '?'.
func ascii(s string) string {
	b := []byte{}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return string(b)
}
