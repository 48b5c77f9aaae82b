package s3

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"mediagw/pkg/awsenv"
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

// An emulator given as S3's own endpoint (AWS_ENDPOINT_URL_S3, no
// AWS_ENDPOINT_URL: how a recorder is pointed at LocalStack's S3 while
// another service goes elsewhere) is addressed by path too: by host name
// the bucket would be a host that does not resolve.
func TestUploadToAnS3OnlyEndpoint(t *testing.T) {
	ep := strings.Replace(awstest.Endpoint(t), "127.0.0.1", "localhost", 1)
	t.Setenv("AWS_ENDPOINT_URL", "")
	os.Unsetenv("AWS_ENDPOINT_URL")
	t.Setenv("AWS_ENDPOINT_URL_S3", ep)
	cfg, err := awsenv.Load(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BaseEndpoint != nil {
		t.Fatalf("general endpoint %q set; the test wants S3's alone", *cfg.BaseEndpoint)
	}
	ctx := context.Background()
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.UsePathStyle = true })
	bucket := awstest.Name("rec")
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "seg.ts")
	if err := os.WriteFile(file, []byte("segment"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := New(cfg, bucket).Upload(ctx, "k.ts", file, "video/mp2t", nil); err != nil {
		t.Fatalf("upload through AWS_ENDPOINT_URL_S3=%s: %v", ep, err)
	}
	if _, err := client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("k.ts")}); err != nil {
		t.Fatalf("uploaded object: %v", err)
	}
}

// The body of an upload is not hashed for the signature, even over plain
// HTTP, where the SDK would otherwise compute its SHA-256: the request
// says the payload is unsigned and carries the CRC32 S3 checks the body
// by (a header over HTTP, a trailer over HTTPS). An HTTP stub of our own
// sees the request as S3 would.
func TestUploadIsUnsignedAndChecksummed(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) { uploadHeaders(t, tls) })
	}
}

func uploadHeaders(t *testing.T, tls bool) {
	headers := make(chan http.Header, 1)
	start := httptest.NewServer
	if tls {
		start = httptest.NewTLSServer
	}
	stub := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case headers <- r.Header.Clone():
		default:
		}
		w.Header().Set("ETag", `"e"`)
	}))
	defer stub.Close()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(stub.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), HTTPClient: stub.Client(),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported} // as awsenv.Load gives it
	file := filepath.Join(t.TempDir(), "seg.ts")
	if err := os.WriteFile(file, []byte("mpeg-ts bytes"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := New(cfg, "rec").Upload(context.Background(), "k.ts", file, "video/mp2t", nil); err != nil {
		t.Fatal(err)
	}
	h := <-headers
	// Over HTTPS the SDK streams the body with the CRC32 as a trailer.
	if got := h.Get("X-Amz-Content-Sha256"); got != "UNSIGNED-PAYLOAD" && got != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
		t.Errorf("X-Amz-Content-Sha256 %q, want an unsigned payload", got)
	}
	if h.Get("X-Amz-Checksum-Crc32") == "" && !strings.Contains(h.Get("X-Amz-Trailer"), "crc32") {
		t.Errorf("no CRC32 checksum in the request: %v", h)
	}
}
