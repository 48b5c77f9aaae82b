// Package recovery is the health-sentinel's gateway recovery: the health
// check, the graded ladder and the snapshot schedule. The incidents side
// learns of each step through Reporter.
package recovery
