// Package ssm reads a gateway's parameters from SSM Parameter Store:
// everything under <root>/gateways/<gateway-id>/ in one paged, decrypted
// read per run.
package ssm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/gatewayid"
	"mediagw/pkg/messaging"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

// API is the part of the SSM client the Store uses.
type API interface {
	GetParametersByPath(ctx context.Context, in *awsssm.GetParametersByPathInput, opts ...func(*awsssm.Options)) (*awsssm.GetParametersByPathOutput, error)
	GetParameter(ctx context.Context, in *awsssm.GetParameterInput, opts ...func(*awsssm.Options)) (*awsssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *awsssm.PutParameterInput, opts ...func(*awsssm.Options)) (*awsssm.PutParameterOutput, error)
	DeleteParameter(ctx context.Context, in *awsssm.DeleteParameterInput, opts ...func(*awsssm.Options)) (*awsssm.DeleteParameterOutput, error)
}

var _ app.ParameterStore = (*Store)(nil)

// Store reads gateway parameters under a root ("/mediagw").
type Store struct {
	api  API
	root string
}

// New returns a Store for the parameter root.
func New(api API, root string) *Store {
	return &Store{api: api, root: "/" + strings.Trim(root, "/")}
}

// NewFromConfig returns a Store on an SSM client of cfg.
func NewFromConfig(cfg aws.Config, root string) *Store { return New(awsssm.NewFromConfig(cfg), root) }

// Path is the folder of one gateway's parameters, with a trailing slash.
func (s *Store) Path(gatewayID string) string { return s.root + "/gateways/" + gatewayID + "/" }

// Parameters reads the gateway's parameters, SecureStrings decrypted.
// bootstrapParameter, when set, names the parameter holding the bootstrap
// password; it must lie under the root, so that an event cannot make the
// configurator send some other secret of the account to a gateway.
func (s *Store) Parameters(ctx context.Context, gatewayID, bootstrapParameter string) (domain.Parameters, error) {
	if _, err := gatewayid.Parse(gatewayID); err != nil {
		return nil, &domain.OpError{Kind: domain.KindPermanent, Err: err}
	}
	path := s.Path(gatewayID)
	out := domain.Parameters{}
	in := &awsssm.GetParametersByPathInput{Path: aws.String(path), WithDecryption: aws.Bool(true), Recursive: aws.Bool(false)}
	for {
		page, err := s.api.GetParametersByPath(ctx, in)
		if err != nil {
			return nil, classify("read parameters under "+path, err)
		}
		for _, p := range page.Parameters {
			out[strings.TrimPrefix(aws.ToString(p.Name), path)] = param(p)
		}
		if page.NextToken == nil || aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	if len(out) == 0 {
		return nil, &domain.OpError{Kind: domain.KindPermanent,
			Err: fmt.Errorf("%w: no parameters under %s (unknown gateway id?)", domain.ErrBadParameter, path)}
	}
	if bp := strings.TrimSpace(bootstrapParameter); bp != "" && bp != path+domain.ParamBootstrapPassword {
		if !strings.HasPrefix(bp, s.root+"/") || strings.Contains(bp, "..") {
			return nil, &domain.OpError{Kind: domain.KindPermanent,
				Err: fmt.Errorf("%w: bootstrap password parameter %s is not under %s", domain.ErrBadParameter, bp, s.root)}
		}
		got, err := s.api.GetParameter(ctx, &awsssm.GetParameterInput{Name: aws.String(bp), WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, classify("read "+bp, err)
		}
		out[domain.ParamBootstrapPassword] = param(*got.Parameter)
	}
	return out, nil
}

// SetPendingReboot records that the gateway has changes waiting for a reboot.
func (s *Store) SetPendingReboot(ctx context.Context, gatewayID, note string) error {
	name := s.Path(gatewayID) + domain.ParamPendingReboot
	_, err := s.api.PutParameter(ctx, &awsssm.PutParameterInput{Name: aws.String(name), Value: aws.String(note),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true),
		Description: aws.String("written by the configurator: changes wait for a reboot of the gateway")})
	if err != nil {
		return classify("write "+name, err)
	}
	return nil
}

// ClearPendingReboot removes the record; an absent one is fine.
func (s *Store) ClearPendingReboot(ctx context.Context, gatewayID string) error {
	name := s.Path(gatewayID) + domain.ParamPendingReboot
	_, err := s.api.DeleteParameter(ctx, &awsssm.DeleteParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &nf) {
		return classify("delete "+name, err)
	}
	return nil
}

func param(p ssmtypes.Parameter) domain.Param {
	return domain.Param{Value: domain.NewSecret(aws.ToString(p.Value)), Secure: p.Type == ssmtypes.ParameterTypeSecureString}
}

func classify(op string, err error) error {
	kind := domain.KindPermanent
	var nf *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		err = fmt.Errorf("%w: %w", domain.ErrBadParameter, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), messaging.Retryable(err):
		kind = domain.KindTransient
	}
	return &domain.OpError{Op: op, Kind: kind, Err: err}
}
