// Package ssm reads a gateway's parameters from SSM Parameter Store:
// everything under <root>/gateways/<gateway-id>/ in one paged, decrypted
// read per run, each with its name and version (a password's login
// credential). It also keeps the configurator's own records there,
// PendingReboot and PendingConfiguration (String parameters, no secret).
package ssm

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	GetParameters(ctx context.Context, in *awsssm.GetParametersInput, opts ...func(*awsssm.Options)) (*awsssm.GetParametersOutput, error)
	DescribeParameters(ctx context.Context, in *awsssm.DescribeParametersInput, opts ...func(*awsssm.Options)) (*awsssm.DescribeParametersOutput, error)
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
	return s.putRecord(ctx, gatewayID, domain.ParamPendingReboot, note, "written by the configurator: changes wait for a reboot of the gateway")
}

// ClearPendingReboot removes the record; an absent one is fine.
func (s *Store) ClearPendingReboot(ctx context.Context, gatewayID string) error {
	return s.deleteRecord(ctx, gatewayID, domain.ParamPendingReboot)
}

// SetPendingConfiguration records a configuration that waits for a
// password the login budget admits.
func (s *Store) SetPendingConfiguration(ctx context.Context, p domain.PendingConfiguration) error {
	if _, err := gatewayid.Parse(p.GatewayID); err != nil {
		return &domain.OpError{Kind: domain.KindPermanent, Err: err}
	}
	v, err := domain.EncodePendingConfiguration(p)
	if err != nil {
		return &domain.OpError{Kind: domain.KindPermanent, Err: err}
	}
	return s.putRecord(ctx, p.GatewayID, domain.ParamPendingConfiguration, v,
		"written by the configurator: a configuration waits for a password the login budget admits")
}

// ClearPendingConfiguration removes the record; an absent one is fine.
func (s *Store) ClearPendingConfiguration(ctx context.Context, gatewayID string) error {
	return s.deleteRecord(ctx, gatewayID, domain.ParamPendingConfiguration)
}

// PendingConfigurations lists every gateway's PendingConfiguration: the
// names from DescribeParameters (path and name filters, no values), the
// values from GetParameters, ten at a time. Unreadable records are left
// out and named in the error.
func (s *Store) PendingConfigurations(ctx context.Context) ([]domain.PendingConfiguration, error) {
	gateways := s.root + "/gateways"
	in := &awsssm.DescribeParametersInput{ParameterFilters: []ssmtypes.ParameterStringFilter{
		{Key: aws.String("Path"), Option: aws.String("Recursive"), Values: []string{gateways}},
		{Key: aws.String("Name"), Option: aws.String("Contains"), Values: []string{"/" + domain.ParamPendingConfiguration}},
	}}
	var names []string
	for {
		page, err := s.api.DescribeParameters(ctx, in)
		if err != nil {
			return nil, classify("list pending configurations under "+gateways, err)
		}
		for _, m := range page.Parameters {
			name := aws.ToString(m.Name)
			id, ok := strings.CutSuffix(strings.TrimPrefix(name, gateways+"/"), "/"+domain.ParamPendingConfiguration)
			if ok && strings.HasPrefix(name, gateways+"/") && !strings.Contains(id, "/") {
				names = append(names, name)
			}
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	var out []domain.PendingConfiguration
	var errs []error
	for batch := range slices.Chunk(names, 10) {
		got, err := s.api.GetParameters(ctx, &awsssm.GetParametersInput{Names: batch})
		if err != nil {
			return out, classify("read pending configurations", err)
		}
		for _, p := range got.Parameters {
			pc, err := domain.DecodePendingConfiguration(aws.ToString(p.Value))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", aws.ToString(p.Name), err))
				continue
			}
			out = append(out, pc)
		}
	}
	return out, errors.Join(errs...)
}

func (s *Store) putRecord(ctx context.Context, gatewayID, short, value, description string) error {
	name := s.Path(gatewayID) + short
	_, err := s.api.PutParameter(ctx, &awsssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value),
		Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true), Description: aws.String(description)})
	if err != nil {
		return classify("write "+name, err)
	}
	return nil
}

func (s *Store) deleteRecord(ctx context.Context, gatewayID, short string) error {
	name := s.Path(gatewayID) + short
	_, err := s.api.DeleteParameter(ctx, &awsssm.DeleteParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if err != nil && !errors.As(err, &nf) {
		return classify("delete "+name, err)
	}
	return nil
}

func param(p ssmtypes.Parameter) domain.Param {
	return domain.Param{Value: domain.NewSecret(aws.ToString(p.Value)), Secure: p.Type == ssmtypes.ParameterTypeSecureString,
		Name: aws.ToString(p.Name), Version: p.Version}
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
