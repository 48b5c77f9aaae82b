// Package ssm is the device-watcher's adapter to the SSM parameter store:
// the gateways' passwords and their parameters' versions, and whether a
// gateway has a bootstrap password (app.Passwords).
package ssm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/device-watcher/internal/app"
)

// SSM is the part of the SSM client Passwords uses.
type SSM interface {
	GetParameter(ctx context.Context, in *awsssm.GetParameterInput, opts ...func(*awsssm.Options)) (*awsssm.GetParameterOutput, error)
}

// Passwords reads each gateway's password from the SecureString
// parameter <root>/gateways/<gateway-id>/Password and caches it with the
// parameter's version (the login budget names a password by parameter and
// version, never by its value).
type Passwords struct {
	ssm  SSM
	root string

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	value   string
	version int64
}

// NewPasswords returns the passwords under root (PARAMETER_ROOT).
func NewPasswords(client SSM, root string) *Passwords {
	return &Passwords{ssm: client, root: strings.TrimRight(root, "/"), cache: map[string]cached{}}
}

// ParameterName is where a gateway's password is kept.
func (p *Passwords) ParameterName(gatewayID string) string {
	return p.root + "/gateways/" + gatewayID + "/Password"
}

// Password returns the gateway's password and the version of the
// parameter it was read from, from the cache unless fresh.
func (p *Passwords) Password(ctx context.Context, gatewayID string, fresh bool) (string, int64, error) {
	p.mu.Lock()
	c, ok := p.cache[gatewayID]
	p.mu.Unlock()
	if ok && !fresh {
		return c.value, c.version, nil
	}
	name := p.ParameterName(gatewayID)
	out, err := p.get(ctx, name, true)
	if err != nil {
		return "", 0, err
	}
	if aws.ToString(out.Value) == "" {
		return "", 0, fmt.Errorf("parameter %s is empty", name)
	}
	c = cached{value: aws.ToString(out.Value), version: out.Version}
	p.mu.Lock()
	p.cache[gatewayID] = c
	p.mu.Unlock()
	return c.value, c.version, nil
}

// Version reads the parameter's current version now, without decrypting
// its value (which is dropped).
func (p *Passwords) Version(ctx context.Context, gatewayID string) (int64, error) {
	out, err := p.get(ctx, p.ParameterName(gatewayID), false)
	if err != nil {
		return 0, err
	}
	return out.Version, nil
}

// BootstrapParameterName is where a gateway's factory password is kept
// (the configurator's BootstrapPassword).
func (p *Passwords) BootstrapParameterName(gatewayID string) string {
	return p.root + "/gateways/" + gatewayID + "/BootstrapPassword"
}

// BootstrapExists reports whether the gateway has a BootstrapPassword
// parameter. The value is not decrypted, and it is dropped.
func (p *Passwords) BootstrapExists(ctx context.Context, gatewayID string) (bool, error) {
	_, err := p.get(ctx, p.BootstrapParameterName(gatewayID), false)
	var nf *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

func (p *Passwords) get(ctx context.Context, name string, decrypt bool) (*ssmtypes.Parameter, error) {
	out, err := p.ssm.GetParameter(ctx, &awsssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(decrypt)})
	if err != nil {
		return nil, fmt.Errorf("parameter %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Version <= 0 {
		return nil, fmt.Errorf("parameter %s: no version", name)
	}
	return out.Parameter, nil
}

var _ app.Passwords = (*Passwords)(nil)
