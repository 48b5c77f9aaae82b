package ecs

import "fmt"

// Size is a Fargate task size: CPU units (1024 = 1 vCPU) and memory in MiB.
type Size struct{ CPU, MemoryMiB int }

func (s Size) String() string { return fmt.Sprintf("%d CPU units / %d MiB", s.CPU, s.MemoryMiB) }

// fargateSizes are Fargate's valid CPU/memory combinations (Linux), each
// CPU with its memory range and step.
var fargateSizes = []struct{ cpu, minMem, maxMem, step int }{
	{256, 512, 2048, 512}, // 512, 1024, 2048 (1536 is not valid; see below)
	{512, 1024, 4096, 1024},
	{1024, 2048, 8192, 1024},
	{2048, 4096, 16384, 1024},
	{4096, 8192, 30720, 1024},
	{8192, 16384, 61440, 4096},
	{16384, 32768, 122880, 8192},
}

// SizeFor is the smallest valid Fargate size for a recorder carrying
// channels streams when one vCPU carries perVCPU of them (the benchmark:
// 100 streams on one core, 1.8 MB each, so memory follows the CPU's
// smallest valid pair: 100 channels → 1 vCPU / 2 GB). Memory is at least
// memBaseMiB plus memPerChannelMiB per channel (the recorder's floor of
// 4 MB per stream, with room for its spool buffers). ok is false when even
// the largest size is too small: the caller keeps the task definition's.
func SizeFor(channels, perVCPU int) (s Size, ok bool) {
	if channels < 1 {
		channels = 1
	}
	if perVCPU < 1 {
		return Size{}, false
	}
	needCPU := (channels*1024 + perVCPU - 1) / perVCPU
	needMem := memBaseMiB + channels*memPerChannelMiB
	for _, f := range fargateSizes {
		if f.cpu < needCPU || f.maxMem < needMem {
			continue
		}
		mem := f.minMem
		for mem < needMem {
			mem += f.step
		}
		if f.cpu == 256 && mem == 1536 {
			mem = 2048
		}
		return Size{CPU: f.cpu, MemoryMiB: mem}, true
	}
	return Size{}, false
}

// What a recorder needs besides CPU: its own baseline and a few MiB per
// stream (services/recorder: 1.8 MB measured, 4 MB its floor).
const (
	memBaseMiB       = 256
	memPerChannelMiB = 8
)
