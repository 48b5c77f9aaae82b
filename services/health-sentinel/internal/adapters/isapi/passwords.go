package isapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SSM is what SSMPasswords needs of the SSM client.
type SSM interface {
	GetParameter(ctx context.Context, in *awsssm.GetParameterInput, opts ...func(*awsssm.Options)) (*awsssm.GetParameterOutput, error)
}

// SSMPasswords reads each gateway's password from the SecureString
// <root>/gateways/<id>/Password, with the parameter's version (the login
// budget names a password by parameter and version, never by value). A
// read is kept for MaxAge, so a health check every few seconds does not
// read SSM each time, and a new version is seen within MaxAge.
type SSMPasswords struct {
	ssm    SSM
	root   string
	maxAge time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedPassword
}

type cachedPassword struct {
	value   string
	version int64
	read    time.Time
}

// NewSSMPasswords returns the passwords under root (PARAMETER_ROOT).
func NewSSMPasswords(client SSM, root string, maxAge time.Duration) *SSMPasswords {
	return &SSMPasswords{ssm: client, root: strings.TrimRight(root, "/"), maxAge: maxAge, now: time.Now, cache: map[string]cachedPassword{}}
}

// ParameterName is where a gateway's password is kept.
func (p *SSMPasswords) ParameterName(gw string) string {
	return p.root + "/gateways/" + gw + "/Password"
}

// Password returns the password and its parameter's version.
func (p *SSMPasswords) Password(ctx context.Context, gw string) (string, int64, error) {
	p.mu.Lock()
	c, ok := p.cache[gw]
	p.mu.Unlock()
	if ok && p.now().Sub(c.read) < p.maxAge {
		return c.value, c.version, nil
	}
	name := p.ParameterName(gw)
	out, err := p.ssm.GetParameter(ctx, &awsssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", 0, fmt.Errorf("read parameter %s: %w", name, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", 0, fmt.Errorf("parameter %s is empty", name)
	}
	c = cachedPassword{value: aws.ToString(out.Parameter.Value), version: out.Parameter.Version, read: p.now()}
	p.mu.Lock()
	p.cache[gw] = c
	p.mu.Unlock()
	return c.value, c.version, nil
}
