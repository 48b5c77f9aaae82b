// Package spool is the recorder's disk spool (app.Spool): finished
// segments wait on local disk until they are uploaded, bounded in bytes (the
// oldest are dropped when the bound is hit, by domain.DropVictims), in
// start-time order per channel, surviving a restart of the process; and the
// work area ffmpeg writes the growing segment into, with the run state a
// later process needs to place a half-written one.
//
// Layout under the root, per channel:
//
//	<root>/<gateway>/<device>/<channel>/.lock   flock: one recorder per channel
//	                                   /work/   ffmpeg writes segments here (+ run.json)
//	                                   /queue/  finished segments + .json sidecars
package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"mediagw/services/recorder/internal/domain"
)

// ErrLocked means another process records the same channel into the same
// spool directory.
var ErrLocked = domain.ErrSpoolLocked

// item is one spooled segment.
type item struct {
	*domain.Spooled
	meta string // sidecar
	busy bool
}

type channel struct {
	dir   string
	lock  *os.File
	items []*item // ordered by start
	wake  chan struct{}
}

// Spool is safe for concurrent use.
type Spool struct {
	src   domain.Source
	limit int64

	mu    sync.Mutex
	chans map[string]*channel
	size  int64
}

// key is the channel ID (domain.ChannelID) a segment's source has here.
func (s *Spool) key(src domain.Source) string {
	return domain.ChannelID(s.src.Device, src.Device, src.Channel)
}

// Open locks and loads the spool directories of the given channels (IDs
// as domain.ChannelID makes them: another device's channels are kept
// under that device).
// Segments left by an earlier process are queued again. If they exceed the
// bound, the oldest are dropped and returned.
func Open(root string, src domain.Source, channels []string, limit int64) (*Spool, []domain.Segment, error) {
	s := &Spool{src: src, limit: limit, chans: map[string]*channel{}}
	for _, ch := range channels {
		dev, name := domain.SplitChannelID(ch)
		if dev == "" {
			dev = src.Device
		}
		c, err := openChannel(filepath.Join(root, src.Gateway, dev, name))
		if err != nil {
			s.Close()
			return nil, nil, fmt.Errorf("spool for channel %s: %w", ch, err)
		}
		s.chans[ch] = c
		for _, it := range c.items {
			s.size += it.Segment.Size
		}
	}
	dropped, err := s.enforce()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, dropped, nil
}

func openChannel(dir string) (*channel, error) {
	for _, d := range []string{dir, filepath.Join(dir, "work"), filepath.Join(dir, "queue")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	c := &channel{dir: dir, lock: lock, wake: make(chan struct{}, 1)}
	items, err := load(filepath.Join(dir, "queue"))
	if err != nil {
		c.close()
		return nil, err
	}
	c.items = items
	return c, nil
}

func (c *channel) close() {
	if c.lock != nil {
		_ = syscall.Flock(int(c.lock.Fd()), syscall.LOCK_UN)
		c.lock.Close()
		c.lock = nil
	}
}

// sidecar is the on-disk form of a queued segment's metadata.
type sidecar struct {
	Gateway    string    `json:"gateway"`
	Device     string    `json:"device"`
	Channel    string    `json:"channel"`
	Start      time.Time `json:"start"`
	DurationMS int64     `json:"duration_ms"`
	Codec      string    `json:"codec"`
	Ext        string    `json:"ext"`
	Media      string    `json:"media"`
}

func load(queue string) ([]*item, error) {
	names, err := os.ReadDir(queue)
	if err != nil {
		return nil, err
	}
	var items []*item
	for _, de := range names {
		name := de.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		meta := filepath.Join(queue, name)
		b, err := os.ReadFile(meta)
		if err != nil {
			return nil, err
		}
		var sc sidecar
		if err := json.Unmarshal(b, &sc); err != nil || sc.Media == "" {
			// Sidecars are written atomically, so this is damage from
			// outside; without metadata the media cannot be named.
			_ = os.Remove(meta)
			_ = os.Remove(strings.TrimSuffix(meta, ".json") + ".ts")
			_ = os.Remove(strings.TrimSuffix(meta, ".json") + ".mp4")
			continue
		}
		media := filepath.Join(queue, filepath.Base(sc.Media))
		fi, err := os.Stat(media)
		if err != nil {
			// Sidecars are written before their media file is moved in;
			// a crash in between leaves a sidecar alone.
			_ = os.Remove(meta)
			continue
		}
		items = append(items, &item{
			Spooled: &domain.Spooled{
				Segment: domain.Segment{
					Source:   domain.Source{Gateway: sc.Gateway, Device: sc.Device, Channel: sc.Channel},
					Start:    sc.Start,
					Duration: time.Duration(sc.DurationMS) * time.Millisecond,
					Codec:    sc.Codec,
					Ext:      sc.Ext,
					Size:     fi.Size(),
				},
				Path: media,
			},
			meta: meta,
		})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Segment.Start.Before(items[j].Segment.Start) })
	return items, nil
}

// WorkDir is where ffmpeg writes the channel's segments while they grow.
func (s *Spool) WorkDir(ch string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chans[ch]; c != nil {
		return filepath.Join(c.dir, "work")
	}
	return ""
}

// ErrUnknownChannel is returned for a channel the spool was not opened with.
var ErrUnknownChannel = domain.ErrUnknownChannel

// Add moves a finished segment file into the queue. If the spool then
// exceeds its bound, the oldest segments not being uploaded are deleted and
// returned (possibly including this one).
func (s *Spool) Add(seg domain.Segment, file string) (domain.Segment, []domain.Segment, error) {
	s.mu.Lock()
	c := s.chans[s.key(seg.Source)]
	s.mu.Unlock()
	if c == nil {
		return seg, nil, fmt.Errorf("spool add: channel %q: %w", seg.Channel, ErrUnknownChannel)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return seg, nil, fmt.Errorf("spool add: %w", err)
	}
	seg.Size = fi.Size()
	base := fmt.Sprintf("%d_%d", seg.Start.UnixMilli(), seg.Duration.Milliseconds())
	queue := filepath.Join(c.dir, "queue")
	media := filepath.Join(queue, base+"."+seg.Ext)
	meta := filepath.Join(queue, base+".json")
	b, err := json.Marshal(sidecar{
		Gateway: seg.Gateway, Device: seg.Device, Channel: seg.Channel,
		Start: seg.Start.UTC(), DurationMS: seg.Duration.Milliseconds(),
		Codec: seg.Codec, Ext: seg.Ext, Media: filepath.Base(media),
	})
	if err != nil {
		return seg, nil, fmt.Errorf("spool add: %w", err)
	}
	if err := writeFileAtomic(meta, b); err != nil {
		return seg, nil, fmt.Errorf("spool add: %w", err)
	}
	if err := os.Rename(file, media); err != nil {
		_ = os.Remove(meta)
		return seg, nil, fmt.Errorf("spool add: %w", err)
	}
	it := &item{Spooled: &domain.Spooled{Segment: seg, Path: media}, meta: meta}

	s.mu.Lock()
	i := sort.Search(len(c.items), func(i int) bool { return c.items[i].Segment.Start.After(seg.Start) })
	c.items = append(c.items, nil)
	copy(c.items[i+1:], c.items[i:])
	c.items[i] = it
	s.size += seg.Size
	s.mu.Unlock()

	dropped, err := s.enforce()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return seg, dropped, err
}

func (s *Spool) enforce() ([]domain.Segment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*item
	var queue []domain.Queued
	for _, c := range s.chans {
		for _, it := range c.items {
			all = append(all, it)
			queue = append(queue, domain.Queued{Segment: it.Segment, Busy: it.busy})
		}
	}
	var dropped []domain.Segment
	var errs []error
	for _, i := range domain.DropVictims(queue, s.size, s.limit) {
		it := all[i]
		if err := s.removeLocked(it); err != nil {
			errs = append(errs, err)
			continue
		}
		dropped = append(dropped, it.Segment)
	}
	return dropped, errors.Join(errs...)
}

func (s *Spool) removeLocked(it *item) error {
	c := s.chans[s.key(it.Segment.Source)]
	if c == nil {
		return nil
	}
	for i, x := range c.items {
		if x == it {
			if err := os.Remove(it.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("spool remove: %w", err)
			}
			_ = os.Remove(it.meta)
			c.items = append(c.items[:i], c.items[i+1:]...)
			s.size -= it.Segment.Size
			return nil
		}
	}
	return nil // already gone
}

// Next waits for the oldest queued segment of a channel that is not being
// uploaded and marks it busy. Give it back with Done or Release.
func (s *Spool) Next(ctx context.Context, ch string) (*domain.Spooled, error) {
	s.mu.Lock()
	c := s.chans[ch]
	s.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("spool next: channel %q: %w", ch, ErrUnknownChannel)
	}
	for {
		s.mu.Lock()
		for _, it := range c.items {
			if !it.busy {
				it.busy = true
				s.mu.Unlock()
				return it.Spooled, nil
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.wake:
		}
	}
}

// find returns the item of a segment Next handed out (nil if it is gone).
func (s *Spool) findLocked(sp *domain.Spooled) *item {
	if c := s.chans[s.key(sp.Segment.Source)]; c != nil {
		for _, it := range c.items {
			if it.Spooled == sp {
				return it
			}
		}
	}
	return nil
}

// Done deletes an uploaded segment.
func (s *Spool) Done(sp *domain.Spooled) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.findLocked(sp); it != nil {
		return s.removeLocked(it)
	}
	return nil // already gone
}

// Release gives back a segment whose upload failed; it stays queued.
func (s *Spool) Release(sp *domain.Spooled) {
	s.mu.Lock()
	if it := s.findLocked(sp); it != nil {
		it.busy = false
	}
	c := s.chans[s.key(sp.Segment.Source)]
	s.mu.Unlock()
	if c != nil {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// Usage reports the spooled bytes and segments.
func (s *Spool) Usage() (bytes int64, segments int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.chans {
		segments += len(c.items)
	}
	return s.size, segments
}

// Pending is the number of segments queued for one channel.
func (s *Spool) Pending(ch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chans[ch]; c != nil {
		return len(c.items)
	}
	return 0
}

// Close releases the directory locks. Queued files stay for the next process.
func (s *Spool) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.chans {
		c.close()
	}
}

func writeFileAtomic(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, name)
}
