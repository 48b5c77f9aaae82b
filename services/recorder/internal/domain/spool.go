package spool

import "sort"

// victims chooses what to drop so that the spool fits its bound: the oldest
// segments first, never one that is being uploaded right now (it may still
// succeed). items need not be sorted; size is their total.
func victims(items []*Item, size, limit int64) []*Item {
	if size <= limit {
		return nil
	}
	cand := make([]*Item, 0, len(items))
	for _, it := range items {
		if !it.busy {
			cand = append(cand, it)
		}
	}
	sort.SliceStable(cand, func(i, j int) bool { return cand[i].Segment.Start.Before(cand[j].Segment.Start) })
	var out []*Item
	for _, it := range cand {
		if size <= limit {
			break
		}
		out = append(out, it)
		size -= it.Segment.Size
	}
	return out
}
