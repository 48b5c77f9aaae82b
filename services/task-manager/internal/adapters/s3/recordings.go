// Package s3 reads recorded segments from the recordings bucket for the
// operator CLI: the newest segment of a channel, and the segments of a
// channel in a time range.
package s3

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"mediagw/services/task-manager/internal/app"
)

// The recorder's key layout (services/recorder, internal/domain) is
//
//	<prefix>/<gateway>/<device>/<channel>/YYYY/MM/DD/HH/<start>_<duration ms>.<ext>
//
// with <start> in UTC as 20060102T150405.000Z and the hour directories taken
// from the segment's own start.
const startLayout = "20060102T150405.000Z"

var segmentName = regexp.MustCompile(`^(\d{8}T\d{6}\.\d{3}Z)_(\d+)\.[a-z0-9]+$`)

// parseSegment reads a segment's start and duration from its key's last part.
func parseSegment(key string, size int64) (app.Segment, bool) {
	m := segmentName.FindStringSubmatch(path.Base(key))
	if m == nil {
		return app.Segment{}, false
	}
	start, err := time.Parse(startLayout, m[1])
	if err != nil {
		return app.Segment{}, false
	}
	ms, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return app.Segment{}, false
	}
	return app.Segment{Key: key, Start: start, Duration: time.Duration(ms) * time.Millisecond, Size: size}, true
}

// S3API is the part of the S3 client the reader uses.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// channelPrefix is the key prefix of one channel's recordings.
func channelPrefix(prefix, gateway, device, channel string) string {
	parts := []string{gateway, device, channel}
	if p := strings.Trim(prefix, "/"); p != "" {
		parts = append([]string{p}, parts...)
	}
	return strings.Join(parts, "/") + "/"
}

// Recordings reads one bucket's segments under a key prefix.
type Recordings struct {
	api    S3API
	bucket string
	prefix string
}

// NewRecordings returns the reader of bucket's segments under prefix.
func NewRecordings(api S3API, bucket, prefix string) *Recordings {
	return &Recordings{api: api, bucket: bucket, prefix: prefix}
}

// Latest is the newest segment of a channel; found is false when it has none.
func (r *Recordings) Latest(ctx context.Context, gateway, device, channel string) (seg app.Segment, found bool, err error) {
	return latest(ctx, r.api, r.bucket, channelPrefix(r.prefix, gateway, device, channel))
}

// Between lists the segments of a channel that overlap [from, to), in order.
func (r *Recordings) Between(ctx context.Context, gateway, device, channel string, from, to time.Time) ([]app.Segment, error) {
	return between(ctx, r.api, r.bucket, channelPrefix(r.prefix, gateway, device, channel), from, to)
}

// latest finds the newest segment under a channel prefix by walking down
// the greatest year, month, day and hour directories: five small listings
// however long the channel has been recorded.
func latest(ctx context.Context, api S3API, bucket, prefix string) (app.Segment, bool, error) {
	p := prefix
	for level := 0; level < 4; level++ {
		var best string
		err := list(ctx, api, bucket, p, "/", func(dirs []string, _ []objectInfo) {
			for _, d := range dirs {
				if d > best {
					best = d
				}
			}
		})
		if err != nil || best == "" {
			return app.Segment{}, false, err
		}
		p = best
	}
	var newest app.Segment
	found := false
	err := list(ctx, api, bucket, p, "", func(_ []string, objs []objectInfo) {
		for _, o := range objs {
			if s, ok := parseSegment(o.key, o.size); ok && (!found || s.Start.After(newest.Start)) {
				newest, found = s, true
			}
		}
	})
	return newest, found, err
}

// between lists the segments of a channel that overlap [from, to), in
// order, reading only the hour directories the range touches (and the
// hour before, where a segment overlapping from may start).
func between(ctx context.Context, api S3API, bucket, prefix string, from, to time.Time) ([]app.Segment, error) {
	var out []app.Segment
	for h := from.UTC().Truncate(time.Hour).Add(-time.Hour); h.Before(to); h = h.Add(time.Hour) {
		err := list(ctx, api, bucket, prefix+h.Format("2006/01/02/15")+"/", "", func(_ []string, objs []objectInfo) {
			for _, o := range objs {
				if s, ok := parseSegment(o.key, o.size); ok && s.End().After(from) && s.Start.Before(to) {
					out = append(out, s)
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

type objectInfo struct {
	key  string
	size int64
}

func list(ctx context.Context, api S3API, bucket, prefix, delimiter string, each func(dirs []string, objs []objectInfo)) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	for {
		out, err := api.ListObjectsV2(ctx, in)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		dirs := make([]string, 0, len(out.CommonPrefixes))
		for _, cp := range out.CommonPrefixes {
			dirs = append(dirs, aws.ToString(cp.Prefix))
		}
		objs := make([]objectInfo, 0, len(out.Contents))
		for _, o := range out.Contents {
			objs = append(objs, objectInfo{key: aws.ToString(o.Key), size: aws.ToInt64(o.Size)})
		}
		each(dirs, objs)
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}
