package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SSM is the part of the SSM client SSMPasswords uses.
type SSM interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// SSMPasswords reads each gateway's password from the SecureString
// parameter <root>/gateways/<gateway-id>/Password and caches it.
type SSMPasswords struct {
	ssm  SSM
	root string

	mu    sync.Mutex
	cache map[string]string
}

// NewSSMPasswords returns a PasswordSource over SSM; root is PARAMETER_ROOT.
func NewSSMPasswords(client SSM, root string) *SSMPasswords {
	return &SSMPasswords{ssm: client, root: strings.TrimRight(root, "/"), cache: map[string]string{}}
}

// ParameterName is where a gateway's password is kept.
func (p *SSMPasswords) ParameterName(gatewayID string) string {
	return p.root + "/gateways/" + gatewayID + "/Password"
}

// Password returns the gateway's password, from the cache unless fresh.
func (p *SSMPasswords) Password(ctx context.Context, gatewayID string, fresh bool) (string, error) {
	p.mu.Lock()
	pw, ok := p.cache[gatewayID]
	p.mu.Unlock()
	if ok && !fresh {
		return pw, nil
	}
	name := p.ParameterName(gatewayID)
	out, err := p.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
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
