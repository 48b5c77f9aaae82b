// Package ssm is the device-watcher's adapter to the SSM parameter store:
// the gateways' passwords (app.Passwords).
package ssm

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/services/device-watcher/internal/app"
)

// SSM is the part of the SSM client Passwords uses.
type SSM interface {
	GetParameter(ctx context.Context, in *awsssm.GetParameterInput, opts ...func(*awsssm.Options)) (*awsssm.GetParameterOutput, error)
}

// Passwords reads each gateway's password from the SecureString
// parameter <root>/gateways/<gateway-id>/Password and caches it.
type Passwords struct {
	ssm  SSM
	root string

	mu    sync.Mutex
	cache map[string]string
}

// NewPasswords returns the passwords under root (PARAMETER_ROOT).
func NewPasswords(client SSM, root string) *Passwords {
	return &Passwords{ssm: client, root: strings.TrimRight(root, "/"), cache: map[string]string{}}
}

// ParameterName is where a gateway's password is kept.
func (p *Passwords) ParameterName(gatewayID string) string {
	return p.root + "/gateways/" + gatewayID + "/Password"
}

// Password returns the gateway's password, from the cache unless fresh.
func (p *Passwords) Password(ctx context.Context, gatewayID string, fresh bool) (string, error) {
	p.mu.Lock()
	pw, ok := p.cache[gatewayID]
	p.mu.Unlock()
	if ok && !fresh {
		return pw, nil
	}
	name := p.ParameterName(gatewayID)
	out, err := p.ssm.GetParameter(ctx, &awsssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("parameter %s: %w", name, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("parameter %s is empty", name)
	}
	pw = aws.ToString(out.Parameter.Value)
	p.mu.Lock()
	p.cache[gatewayID] = pw
	p.mu.Unlock()
	return pw, nil
}

var _ app.Passwords = (*Passwords)(nil)
