// Package ssm reads the RTSP password from SSM Parameter Store
// (app.Password).
package ssm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/loginbudget"
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

// Password is a SecureString parameter, cached in memory with its version
// (the credential the login budget knows it by). The value is never logged
// and never put into an error.
type Password struct {
	client  ParameterGetter
	name    string
	secrets Registry

	mu      sync.Mutex
	value   string
	version int64 // of value; 0: not read yet
	latest  int64 // the newest version Current has seen
}

// Registry is where every value read is registered for redaction
// (pkg/redact's Secrets, the runtime's: its logger then redacts it in
// every encoding).
type Registry interface{ Add(secrets ...string) }

// Option tunes a Password.
type Option func(*Password)

// WithSecrets registers every value read in r.
func WithSecrets(r Registry) Option { return func(p *Password) { p.secrets = r } }

// NewPassword reads parameter name with client.
func NewPassword(client ParameterGetter, name string, opts ...Option) *Password {
	p := &Password{client: client, name: name}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Get returns the password and its credential, reading it from SSM the
// first time and again once Current has seen a newer version.
func (p *Password) Get(ctx context.Context) (string, loginbudget.Credential, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.version > 0 && p.latest <= p.version {
		return p.value, loginbudget.CredentialOf(p.name, p.version), nil
	}
	prm, err := p.get(ctx, true)
	if err != nil {
		return "", "", err
	}
	if prm.Value == nil {
		return "", "", fmt.Errorf("ssm parameter %s: no value", p.name)
	}
	p.value, p.version = *prm.Value, prm.Version
	if p.secrets != nil {
		p.secrets.Add(p.value)
	}
	p.latest = max(p.latest, prm.Version)
	return p.value, loginbudget.CredentialOf(p.name, p.version), nil
}

// Current reads the parameter's version now, without decrypting its value
// (which is dropped), and returns the credential it names.
func (p *Password) Current(ctx context.Context) (loginbudget.Credential, error) {
	prm, err := p.get(ctx, false)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.latest = max(p.latest, prm.Version)
	p.mu.Unlock()
	return loginbudget.CredentialOf(p.name, prm.Version), nil
}

func (p *Password) get(ctx context.Context, decrypt bool) (*types.Parameter, error) {
	out, err := p.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.name), WithDecryption: aws.Bool(decrypt)})
	if err != nil {
		var nf *types.ParameterNotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("ssm parameter %s: %w", p.name, ErrNotFound)
		}
		return nil, fmt.Errorf("ssm parameter %s: %w", p.name, err)
	}
	if out.Parameter == nil || out.Parameter.Version <= 0 {
		return nil, fmt.Errorf("ssm parameter %s: no version", p.name)
	}
	return out.Parameter, nil
}
