package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"mediagw/services/task-manager/internal/domain"
)

// Reconcile compares what should be recorded (deviceMediaURL), what the
// manager believes (ip-camera) and what runs (the launcher), and fixes the
// difference: starts missing tasks, stops orphans, adopts tasks whose
// launch was not recorded, restarts tasks that vanished without a state
// change. Work on one device that fails does not stop the others.
func (m *Manager) Reconcile(ctx context.Context) (err error) {
	begin := time.Now()
	defer func() { m.m.Reconciled(time.Since(begin), err) }()

	// Tasks first, rows after: see domain.ReconcileInput.
	listedAt := m.cfg.Now()
	tasks, err := m.launcher.List(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	tableRows, badTable, err := m.table.Rows(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	table, badURLs := DesiresOf(tableRows)
	for _, b := range append(badTable, badURLs...) {
		m.log.WarnContext(ctx, "deviceMediaURL entry left out", "err", b)
	}
	rows, badRows, err := m.store.List(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, b := range badRows {
		m.log.ErrorContext(ctx, "ip-camera row unreadable; left alone", "err", b)
	}
	m.m.Devices(census(rows))

	vanishGrace := m.cfg.Policy.LaunchGrace
	if m.cfg.ExactList {
		vanishGrace = 0
	}
	plan := domain.Reconcile(domain.ReconcileInput{
		Table: table, Rows: rows, Tasks: tasks, ListedAt: listedAt, AbsentGrace: m.cfg.AbsentGrace, VanishGrace: vanishGrace,
	}, m.cfg.Policy)

	var errs []error
	for _, o := range plan.Orphans {
		m.log.WarnContext(ctx, "stopping orphan task", "task_id", o.ID, "device", o.Device)
		if err := m.launcher.Stop(ctx, o.ID, "orphan: not the current recording task of any device"); err != nil {
			errs = append(errs, err)
			continue
		}
		m.m.OrphanStopped()
	}
	for dev, t := range plan.Adopt {
		if err := m.adopt(ctx, dev, t); err != nil {
			errs = append(errs, err)
		}
	}
	// Ends first, planning after (below): the devices of a packed task
	// that vanished start again together.
	endedAt := m.cfg.Now()
	for dev, end := range plan.Vanished {
		unlock := m.locks.lock(dev)
		err := m.taskEndedLocked(ctx, dev, end, true, endedAt)
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, in := range plan.Desires {
		unlock := m.locks.lock(in.Device)
		err := m.applyLocked(ctx, in)
		unlock()
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, dev := range plan.Devices {
		if err := m.Ensure(ctx, dev); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

func (m *Manager) adopt(ctx context.Context, device string, o domain.ObservedTask) error {
	unlock := m.locks.lock(device)
	defer unlock()
	t := domain.Task{ID: o.ID, Launcher: m.launcher.Name(), Channels: o.Channels, StartedAt: o.StartedAt}
	if len(o.Packed) > 0 {
		t.Pack = slices.Sorted(slices.Values(append([]string{o.Device}, o.Packed...)))
	}

	adopted := false
	_, _, err := m.mutate(ctx, device, func(cur domain.Device, found bool) (domain.Device, bool) {
		if !found {
			return cur, false
		}
		if device != o.Device {
			// The listing names the first device's channels; a packed one's are its row's.
			t.Channels = domain.ChannelNumbers(cur.Channels)
		}
		nd, ok := domain.Launched(cur, o.Token, t)
		adopted = ok && (cur.Task == nil || cur.Task.ID != t.ID)
		return nd, adopted
	})
	if err == nil && adopted {
		m.log.InfoContext(ctx, "adopted a task whose launch was not recorded", "device", device, "task_id", t.ID)
	}
	return err
}

// census counts the devices in each status, every status present.
func census(rows []domain.Device) map[domain.Status]int {
	counts := map[domain.Status]int{}
	for _, s := range []domain.Status{domain.StatusIdle, domain.StatusStarting, domain.StatusRunning,
		domain.StatusStopping, domain.StatusBackoff, domain.StatusGaveUp} {
		counts[s] = 0
	}
	for _, d := range rows {
		counts[d.Status]++
	}
	return counts
}
