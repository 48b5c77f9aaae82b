// Package s3 counts the footage missed during an incident from the
// segments in the recordings bucket. The recorder's key layout
// (services/recorder) is
//
//	<prefix>/<gateway>/<device>/<channel>/YYYY/MM/DD/HH/<start>_<duration ms>.<ext>
//
// with <start> in UTC as 20060102T150405.000Z; the hour directories are
// the segment's own start.
package s3

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

const startLayout = "20060102T150405.000Z"

var segmentName = regexp.MustCompile(`^(\d{8}T\d{6}\.\d{3}Z)_(\d+)\.[a-z0-9]+$`)

// Client is the part of the S3 client the counter uses.
type Client interface {
	ListObjectsV2(ctx context.Context, in *awss3.ListObjectsV2Input, opts ...func(*awss3.Options)) (*awss3.ListObjectsV2Output, error)
}

// Footage is app.Footage on one bucket.
type Footage struct {
	api    Client
	bucket string
	prefix string
}

// NewFootage returns the counter of bucket's segments under prefix.
func NewFootage(api Client, bucket, prefix string) *Footage {
	return &Footage{api: api, bucket: bucket, prefix: strings.Trim(prefix, "/")}
}

type span struct{ from, to time.Time }

// Missed says how much of [from, to) each channel of cameras (every
// camera of the gateway when empty) has no segment for.
func (f *Footage) Missed(ctx context.Context, gateway string, cameras []string, from, to time.Time) (string, error) {
	if !to.After(from) {
		return "none", nil
	}
	gwPrefix := f.key(gateway) + "/"
	if len(cameras) == 0 {
		var err error
		if cameras, err = f.dirs(ctx, gwPrefix); err != nil {
			return "", err
		}
	}
	var total time.Duration
	var parts []string
	for _, cam := range cameras {
		chans, err := f.dirs(ctx, gwPrefix+cam+"/")
		if err != nil {
			return "", err
		}
		for _, ch := range chans {
			covered, err := f.covered(ctx, gwPrefix+cam+"/"+ch+"/", from, to)
			if err != nil {
				return "", err
			}
			miss := to.Sub(from) - covered
			total += miss
			parts = append(parts, fmt.Sprintf("%s/%s %s", cam, ch, miss.Round(time.Second)))
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("all of it: no recordings of these cameras in the bucket (%s)", to.Sub(from).Round(time.Second)), nil
	}
	return fmt.Sprintf("%s in total over %d channels (%s)", total.Round(time.Second), len(parts), strings.Join(parts, ", ")), nil
}

func (f *Footage) key(s string) string {
	if f.prefix == "" {
		return s
	}
	return f.prefix + "/" + s
}

// dirs lists the next level of "directories" under prefix.
func (f *Footage) dirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := awss3.NewListObjectsV2Paginator(f.api, &awss3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", f.bucket, prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/"))
		}
	}
	slices.Sort(out)
	return out, nil
}

// covered is how much of [from, to) the channel's segments cover. A
// segment that starts in the hour before from may reach into it.
func (f *Footage) covered(ctx context.Context, chPrefix string, from, to time.Time) (time.Duration, error) {
	var spans []span
	for h := from.UTC().Truncate(time.Hour).Add(-time.Hour); h.Before(to); h = h.Add(time.Hour) {
		prefix := chPrefix + h.Format("2006/01/02/15") + "/"
		p := awss3.NewListObjectsV2Paginator(f.api, &awss3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return 0, fmt.Errorf("list s3://%s/%s: %w", f.bucket, prefix, err)
			}
			for _, o := range page.Contents {
				m := segmentName.FindStringSubmatch(path.Base(aws.ToString(o.Key)))
				if m == nil {
					continue
				}
				start, err1 := time.Parse(startLayout, m[1])
				ms, err2 := strconv.ParseInt(m[2], 10, 64)
				if err1 != nil || err2 != nil {
					continue
				}
				s := span{later(start, from), earlier(start.Add(time.Duration(ms)*time.Millisecond), to)}
				if s.to.After(s.from) {
					spans = append(spans, s)
				}
			}
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	var covered time.Duration
	var cur span
	for _, s := range spans {
		switch {
		case cur.to.IsZero():
			cur = s
		case !s.from.After(cur.to):
			cur.to = later(cur.to, s.to)
		default:
			covered += cur.to.Sub(cur.from)
			cur = s
		}
	}
	if !cur.to.IsZero() {
		covered += cur.to.Sub(cur.from)
	}
	return covered, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
