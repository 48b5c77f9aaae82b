package domain

import (
	"sort"
	"time"
)

// Spooled is a finished segment waiting in the spool for upload: its place
// in time and the media file that holds it.
type Spooled struct {
	Segment Segment
	Path    string
}

// Queued is a spooled segment as the drop policy sees it.
type Queued struct {
	Segment Segment
	Busy    bool // being uploaded right now
}

// DropVictims chooses what to drop so that the spool fits its bound: the
// oldest segments first, never one that is being uploaded right now (it may
// still succeed). queue need not be sorted; size is its total in bytes. It
// returns indexes into queue, oldest first.
func DropVictims(queue []Queued, size, limit int64) []int {
	if size <= limit {
		return nil
	}
	cand := make([]int, 0, len(queue))
	for i, q := range queue {
		if !q.Busy {
			cand = append(cand, i)
		}
	}
	sort.SliceStable(cand, func(i, j int) bool { return queue[cand[i]].Segment.Start.Before(queue[cand[j]].Segment.Start) })
	var out []int
	for _, i := range cand {
		if size <= limit {
			break
		}
		out = append(out, i)
		size -= queue[i].Segment.Size
	}
	return out
}

// RunState is what a later process needs to place the segment a killed
// ffmpeg left half-written: the run's file prefix, its time anchor, the
// stream-time end of the last listed segment and the codec. It is saved
// with every listed segment.
type RunState struct {
	Prefix  string
	Anchor  time.Time
	LastEnd float64
	Codec   string
}
