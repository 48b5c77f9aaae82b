// Command app is codescan's fixture: each way a binary can reach an AWS
// operation, and look-alikes that are not one.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"mediagw/pkg/service"
)

// store is a small interface of its own, as the services define them.
type store interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// lookalike has an operation's name but no SDK input.
type lookalike struct{}

func (lookalike) DeleteObject(context.Context, string) error { return nil }

const queue = "fixture-queue"

func main() {
	ctx := context.Background()
	c := service.NewConfig("fixture", "codescan fixture", ":0")
	c.Table("fixture-table")
	c.OptionalQueue(queue)

	var s3c *s3.Client
	_, _ = s3c.PutObject(ctx, &s3.PutObjectInput{})
	_, _ = s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{})

	var st store = dynamodb.New(dynamodb.Options{})
	_, _ = st.GetItem(ctx, &dynamodb.GetItemInput{})
	p := dynamodb.NewQueryPaginator(dynamodb.New(dynamodb.Options{}), &dynamodb.QueryInput{TableName: aws.String("t")})
	_ = p

	_ = lookalike{}.DeleteObject(ctx, "k")
}
