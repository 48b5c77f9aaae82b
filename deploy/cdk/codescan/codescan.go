// Package codescan reads what a mediagw binary does with AWS from its
// source: every AWS SDK operation its code (and the mediagw packages it
// links) can call, as IAM actions, and the topology resources it declares.
// The stack's roles are checked against it (TestRolesMatchCode), so a new
// SDK call without a grant fails make test instead of failing in AWS.
package codescan

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/types"
	"slices"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

const sdkService = "github.com/aws/aws-sdk-go-v2/service/"

// prefixes maps an SDK service package to its IAM service prefix where the
// two differ.
var prefixes = map[string]string{"eventbridge": "events", "cloudwatchlogs": "logs"}

// actionsOf are the IAM actions an SDK operation needs where they are not
// "<prefix>:<operation>" (Service Authorization Reference, per service).
var actionsOf = map[string][]string{
	"s3.ListObjectsV2":                 {"s3:ListBucket"},
	"s3.ListObjects":                   {"s3:ListBucket"},
	"s3.HeadBucket":                    {"s3:ListBucket"},
	"s3.HeadObject":                    {"s3:GetObject"},
	"s3.GetObjectAttributes":           {"s3:GetObject"},
	"s3.DeleteObjects":                 {"s3:DeleteObject"},
	"s3.CreateMultipartUpload":         {"s3:PutObject"},
	"s3.UploadPart":                    {"s3:PutObject"},
	"s3.CompleteMultipartUpload":       {"s3:PutObject"},
	"s3.ListMultipartUploads":          {"s3:ListBucketMultipartUploads"},
	"sqs.SendMessageBatch":             {"sqs:SendMessage"},
	"sqs.DeleteMessageBatch":           {"sqs:DeleteMessage"},
	"sqs.ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
	"sns.PublishBatch":                 {"sns:Publish"},
	// RunTask with tags is also authorized as ecs:TagResource, and hands
	// the task definition's roles to ECS (iam:PassRole).
	"ecs.RunTask": {"ecs:RunTask", "ecs:TagResource", "iam:PassRole"},
	// A transaction is authorized as each of its writes.
	"dynamodb.TransactWriteItems": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"},
	"dynamodb.TransactGetItems":   {"dynamodb:GetItem"},
	"dynamodb.BatchWriteItem":     {"dynamodb:BatchWriteItem"},
	"ec2.RunInstances":            {"ec2:RunInstances", "ec2:CreateTags"},
}

// helpers are SDK functions that call operations on a client they are
// given: the operations they call.
var helpers = map[string][]string{
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager.NewUploader": {"s3.PutObject", "s3.CreateMultipartUpload", "s3.UploadPart", "s3.CompleteMultipartUpload", "s3.AbortMultipartUpload"},
}

// Binary is what one binary's code does with AWS.
type Binary struct {
	// Actions are the IAM actions, sorted, with where each comes from.
	Actions map[string][]string
	// Resources are the topology names passed to (*service.Config).Table,
	// Queue, Topic and Bucket, by kind ("Table", ...).
	Resources map[string][]string
}

// ActionList returns the actions, sorted.
func (b Binary) ActionList() []string {
	var out []string
	for a := range b.Actions {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Scan reads the binary whose main package is pattern (an import path),
// run from dir (a directory of the go.work workspace). Only mediagw
// packages are read: an SDK operation counts where mediagw code calls it
// (on a client or on an interface of its own with the client's method
// shape), or passes a client to an SDK helper (paginators, the uploader).
func Scan(dir, pattern string) (Binary, error) {
	deps, err := packages.Load(&packages.Config{Dir: dir, Mode: packages.NeedName | packages.NeedImports | packages.NeedDeps}, pattern)
	if err != nil {
		return Binary{}, fmt.Errorf("codescan: list %s: %w", pattern, err)
	}
	var own []string
	packages.Visit(deps, nil, func(p *packages.Package) {
		if strings.HasPrefix(p.PkgPath, "mediagw/") && !strings.HasPrefix(p.PkgPath, "mediagw/pkg/gen/") {
			own = append(own, p.PkgPath)
		}
	})
	if len(own) == 0 {
		return Binary{}, fmt.Errorf("codescan: %s: no mediagw packages", pattern)
	}
	pkgs, err := packages.Load(&packages.Config{Dir: dir, Mode: packages.NeedName | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo}, own...)
	if err != nil {
		return Binary{}, fmt.Errorf("codescan: load %s: %w", pattern, err)
	}
	b := Binary{Actions: map[string][]string{}, Resources: map[string][]string{}}
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			return Binary{}, fmt.Errorf("codescan: %s: %v", p.PkgPath, p.Errors[0])
		}
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				where := p.Fset.Position(call.Pos()).String()
				for _, op := range operations(p.TypesInfo, call) {
					for _, a := range iamActions(op) {
						if !slices.Contains(b.Actions[a], where) {
							b.Actions[a] = append(b.Actions[a], where)
						}
					}
				}
				if kind, name, ok := declaredResource(p.TypesInfo, call); ok && !slices.Contains(b.Resources[kind], name) {
					b.Resources[kind] = append(b.Resources[kind], name)
					sort.Strings(b.Resources[kind])
				}
				return true
			})
		}
	}
	return b, nil
}

// operations returns the SDK operations ("s3.PutObject") call makes.
func operations(info *types.Info, call *ast.CallExpr) []string {
	var fn *types.Func
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.SelectorExpr:
		fn, _ = info.Uses[f.Sel].(*types.Func)
	case *ast.Ident:
		fn, _ = info.Uses[f].(*types.Func)
	case *ast.IndexExpr: // generic instantiation
		if s, ok := f.X.(*ast.SelectorExpr); ok {
			fn, _ = info.Uses[s.Sel].(*types.Func)
		}
	}
	if fn == nil || fn.Pkg() == nil {
		return nil
	}
	if ops, ok := helpers[fn.Pkg().Path()+"."+fn.Name()]; ok {
		return ops
	}
	sig := fn.Type().(*types.Signature)
	// Paginators and waiters: New<Op>Paginator(client, *<Op>Input).
	if sig.Recv() == nil && strings.HasPrefix(fn.Pkg().Path(), sdkService) {
		svc := strings.TrimPrefix(fn.Pkg().Path(), sdkService)
		if op, ok := strings.CutSuffix(strings.TrimPrefix(fn.Name(), "New"), "Paginator"); ok && strings.HasPrefix(fn.Name(), "New") {
			return []string{svc + "." + op}
		}
		return nil
	}
	if sig.Recv() == nil {
		return nil
	}
	// A method with an operation's shape: Op(ctx, *svc.OpInput, ...) —
	// on the SDK's client or on any interface standing for it.
	if sig.Params().Len() < 2 {
		return nil
	}
	ptr, ok := sig.Params().At(1).Type().(*types.Pointer)
	if !ok {
		return nil
	}
	named, ok := ptr.Elem().(*types.Named)
	if !ok || named.Obj().Pkg() == nil || !strings.HasPrefix(named.Obj().Pkg().Path(), sdkService) {
		return nil
	}
	svc := strings.TrimPrefix(named.Obj().Pkg().Path(), sdkService)
	if strings.Contains(svc, "/") || named.Obj().Name() != fn.Name()+"Input" {
		return nil
	}
	return []string{svc + "." + fn.Name()}
}

func iamActions(op string) []string {
	if a, ok := actionsOf[op]; ok {
		return a
	}
	svc, name, _ := strings.Cut(op, ".")
	if p, ok := prefixes[svc]; ok {
		svc = p
	}
	return []string{svc + ":" + name}
}

// declaredResource recognises c.Table("name") and its kin on
// mediagw/pkg/service's Config, with a constant argument.
func declaredResource(info *types.Info, call *ast.CallExpr) (kind, name string, ok bool) {
	sel, isSel := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !isSel || len(call.Args) == 0 {
		return "", "", false
	}
	fn, _ := info.Uses[sel.Sel].(*types.Func)
	if fn == nil || fn.Pkg() == nil || fn.Pkg().Path() != "mediagw/pkg/service" {
		return "", "", false
	}
	recv := fn.Type().(*types.Signature).Recv()
	if recv == nil || !strings.HasSuffix(types.TypeString(recv.Type(), nil), "service.Config") {
		return "", "", false
	}
	kind = strings.TrimPrefix(fn.Name(), "Optional")
	switch kind {
	case "Table", "Queue", "Topic", "Bucket":
	default:
		return "", "", false
	}
	tv := info.Types[call.Args[0]]
	if tv.Value == nil || tv.Value.Kind() != constant.String {
		return "", "", false
	}
	return kind, constant.StringVal(tv.Value), true
}
