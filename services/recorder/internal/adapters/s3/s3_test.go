package s3

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// A segment file goes up under its key with its content type and
// metadata; a file that is gone is reported as such (the recorder counts
// it as missing instead of retrying).
func TestUploadAgainstTheEmulator(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true })
	bucket := awstest.Name("rec")
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "seg.ts")
	if err := os.WriteFile(file, []byte("mpeg-ts bytes"), 0o640); err != nil {
		t.Fatal(err)
	}
	store := New(cfg, bucket)
	key := "recordings/gw/dev/1/2026/01/02/03/20260102T030405.000Z_4000.ts"
	if err := store.Upload(ctx, key, file, "video/mp2t", map[string]string{"codec": "h264"}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	body, _ := io.ReadAll(out.Body)
	if string(body) != "mpeg-ts bytes" || aws.ToString(out.ContentType) != "video/mp2t" || out.Metadata["codec"] != "h264" {
		t.Fatalf("object %q, content type %q, metadata %v", body, aws.ToString(out.ContentType), out.Metadata)
	}
	if err := store.Upload(ctx, key, filepath.Join(t.TempDir(), "gone.ts"), "video/mp2t", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("upload of a missing file = %v, want fs.ErrNotExist", err)
	}
}
