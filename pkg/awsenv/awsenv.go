// Package awsenv loads the AWS configuration of every mediagw binary and
// test: the standard SDK chain (so AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> point it at an emulator) with the project's
// one retry policy.
package awsenv

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// MaxAttempts is how often one AWS call is tried before its error is
// returned.
const MaxAttempts = 8

// Load returns the configuration. Throttling, 5xx answers and lost
// connections are retried here, by the SDK, with backoff and jitter;
// callers do not wrap AWS calls in retry loops of their own for them.
// opts add to the chain (tests aim it at their emulator).
func Load(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	retryer := config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = MaxAttempts
			o.MaxBackoff = 5 * time.Second
			// The client-side retry quota fails calls outright after a burst
			// of errors (an emulator restarting, a throttling storm);
			// backoff alone paces the retries.
			o.RateLimiter = ratelimit.None
		})
	})
	return config.LoadDefaultConfig(ctx, append([]func(*config.LoadOptions) error{retryer}, opts...)...)
}
