// Package s3store uploads segment files to S3 with the SDK's upload manager.
package s3store

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Store puts objects into one bucket.
type Store struct {
	bucket   string
	uploader *manager.Uploader
}

// New uploads to bucket. Segments below 32 MiB (30 s of an 8 Mbit/s
// stream) go in a single PutObject; larger ones in 32 MiB parts. With a
// custom endpoint (AWS_ENDPOINT_URL: the emulator) buckets are addressed
// by path, as emulators need. opts adjust the client further.
func New(cfg aws.Config, bucket string, opts ...func(*s3.Options)) *Store {
	opts = append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil }}, opts...)
	client := s3.NewFromConfig(cfg, opts...)
	return &Store{bucket: bucket, uploader: manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = 32 << 20
		u.Concurrency = 2
	})}
}

// Put uploads body under key. A body that is an *os.File is read in place,
// without buffering it in memory.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, contentType string, meta map[string]string) error {
	_, err := s.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		Body:        body,
		ContentType: aws.String(contentType),
		Metadata:    meta,
	})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", key, err)
	}
	return nil
}
