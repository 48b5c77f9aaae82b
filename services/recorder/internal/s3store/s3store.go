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

// New uses client for bucket. Segments below 32 MiB (30 s of an 8 Mbit/s
// stream) go in a single PutObject; larger ones in 32 MiB parts.
func New(client *s3.Client, bucket string) *Store {
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
