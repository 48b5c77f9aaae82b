// Package ssm reads the gateways' SSM parameters for the operator CLI:
// which gateways have parameters, and their plain (String) settings. It
// asks for no decryption, so a SecureString's value never leaves SSM.
package ssm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/task-manager/internal/app"
)

// Gateways reads the parameters under <root>/gateways/.
type Gateways struct {
	api  ssm.GetParametersByPathAPIClient
	root string
}

// NewGateways returns the reader of the gateways' parameters under root.
func NewGateways(api ssm.GetParametersByPathAPIClient, root string) *Gateways {
	return &Gateways{api: api, root: root}
}

// List returns every gateway that has a parameter, ordered by id, with its
// GatewayName and ExternalIP when they are String parameters, and the
// name and version of its Password.
func (g *Gateways) List(ctx context.Context) ([]app.GatewayInfo, error) {
	all := map[string]*app.GatewayInfo{}
	base := strings.TrimRight(g.root, "/") + "/gateways/"
	pager := ssm.NewGetParametersByPathPaginator(g.api, &ssm.GetParametersByPathInput{
		Path: aws.String(strings.TrimSuffix(base, "/")), Recursive: aws.Bool(true), WithDecryption: aws.Bool(false),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ssm parameters under %s: %w", base, err)
		}
		for _, p := range page.Parameters {
			id, key, ok := strings.Cut(strings.TrimPrefix(aws.ToString(p.Name), base), "/")
			if !ok {
				continue
			}
			gw := all[id]
			if gw == nil {
				gw = &app.GatewayInfo{ID: id}
				all[id] = gw
			}
			if key == "Password" {
				// Its version names the credential in the login budget.
				gw.PasswordParameter, gw.PasswordVersion = aws.ToString(p.Name), p.Version
			}
			if p.Type != ssmtypes.ParameterTypeString {
				continue // a SecureString's value is never shown
			}
			switch key {
			case "GatewayName":
				gw.Name = aws.ToString(p.Value)
			case "ExternalIP":
				gw.ExternalIP = aws.ToString(p.Value)
			}
		}
	}
	out := make([]app.GatewayInfo, 0, len(all))
	for _, gw := range all {
		out = append(out, *gw)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
