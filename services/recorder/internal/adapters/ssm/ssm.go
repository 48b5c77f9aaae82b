// Package ssm reads the RTSP password from SSM Parameter Store
// (app.Password).
package ssm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
)

// ErrNotFound means the parameter does not exist.
var ErrNotFound = domain.ErrNotFound

var _ app.Password = (*Password)(nil)

// ParameterGetter is the part of the SSM client used here.
type ParameterGetter interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// Password is a SecureString parameter, cached in memory. The value is
// never logged and never put into an error.
type Password struct {
	client   ParameterGetter
	name     string
	minAge   time.Duration
	now      func() time.Time
	mu       sync.Mutex
	value    string
	have     bool
	fetched  time.Time
	outdated bool
}

// NewPassword reads parameter name with client. After Invalidate, the value
// is read again, at most once per minAge.
func NewPassword(client ParameterGetter, name string, minAge time.Duration) *Password {
	return &Password{client: client, name: name, minAge: minAge, now: time.Now}
}

// Get returns the password, reading it from SSM the first time and after
// Invalidate.
func (p *Password) Get(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.have && (!p.outdated || p.now().Sub(p.fetched) < p.minAge) {
		return p.value, nil
	}
	out, err := p.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.name), WithDecryption: aws.Bool(true)})
	if err != nil {
		var nf *types.ParameterNotFound
		if errors.As(err, &nf) {
			return "", fmt.Errorf("ssm parameter %s: %w", p.name, ErrNotFound)
		}
		return "", fmt.Errorf("ssm parameter %s: %w", p.name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", fmt.Errorf("ssm parameter %s: no value", p.name)
	}
	p.value, p.have, p.fetched, p.outdated = *out.Parameter.Value, true, p.now(), false
	return p.value, nil
}

// Invalidate marks the cached value as refused by the gateway, so the next
// Get reads it again (the password may have been rotated).
func (p *Password) Invalidate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outdated = true
}
