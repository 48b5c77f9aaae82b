// Package recovery is the health-sentinel's gateway recovery: the health
// check, the graded recovery ladder and the snapshot schedule. The
// incidents side calls Check, Recover and SnapshotDue on its schedule and
// learns of every step through Reporter. The rules (which rung next, the
// budget, when a snapshot is due, which ones retention lets go) are pure
// functions in internal/domain/recovery*.go; the adapters are
// internal/adapters/{isapi,ec2,simgateway,leases}; internal/wiring/recovery.go
// builds it from its settings.
//
// # Health check (Check)
//
// The gateway's API and its machine are looked at together, each within
// GATEWAY_TIMEOUT + 5 s:
//
//   - API: GET /ISAPI/System/status through pkg/isapi, every login through
//     the shared login budget. The sentinel logs in only with the password
//     parameter version the budget's ledger says the gateway last accepted
//     (the configurator and the device-watcher log in all the time); with
//     any other, or when the budget refuses, it asks without credentials
//     whether the API answers at all and spends no login. Verdicts: ok
//     (status read; its uptime gives the boot time), sick (an error answer:
//     busy, device error, 5xx, malformed), silent (no answer within the
//     timeout: hung, refused, reset), unknown (credentials rejected, locked,
//     no login possible, path unsupported: never acted on).
//   - Machine: EC2 DescribeInstanceStatus of the gateway's instance — not
//     running, or a system/instance check impaired, is a failure; both ok is
//     fine; initializing is no verdict. Locally, the simulator's admin
//     health.
//
// # The ladder (Recover)
//
// One sentinel at a time per gateway: Recover takes the gateway's lease
// (item health-sentinel/recovery/<gateway> of mediagw-leases, renewed every
// third of LEASE_DURATION) or returns at once; a call in the same process
// while its ladder or a snapshot pass of that gateway runs returns at once
// too (the caller's next health check calls again). The ladder's state (the
// attempts within the budget's window, a replacement under way) is kept
// on the lease item, written only by the holder (fenced by the lease's
// token), and each attempt is written before it starts, so it counts even
// if the sentinel dies during it.
//
// Rungs, the lowest that applies and has budget left, never going back
// down within RECOVERY_WINDOW:
//
//  1. isapi-reboot (RECOVERY_MAX_ISAPI_REBOOTS): only when the API answers
//     but is sick. A reboot that was not sent or was refused ends the step
//     at once (error).
//  2. ec2-reboot (RECOVERY_MAX_EC2_REBOOTS): RebootInstances; locally the
//     simulator's machine reboot. For a silent API, or an impaired instance.
//  3. replace (RECOVERY_MAX_REPLACEMENTS): from the newest available AMI
//     snapshot taken while the gateway was healthy, RunInstances with the
//     old instance's type, subnet, security groups, key, instance profile
//     and tags (plus mediagw:replaces=<old>, and a client token per
//     gateway and old instance, so no retry starts a second one); the new
//     instance's id is saved at once; once it runs the Elastic IP is
//     re-associated to it; once the gateway answers ISAPI behind the
//     address the old instance is terminated. A sentinel that dies mid-way
//     is continued by the next one (unless it started more than twice
//     RECOVERY_WAIT_REPLACE ago). A replacement that does not bring the
//     gateway back leaves both instances for people to look at. Locally:
//     the simulator's replace (a new machine id, same address).
//
// Each rung is bounded by its wait (RECOVERY_WAIT_ISAPI_REBOOT,
// RECOVERY_WAIT_EC2_REBOOT, RECOVERY_WAIT_REPLACE): the gateway must be
// healthy again within it — after a reboot, with a boot time after the
// reboot was asked for — else the step fails and the next rung is tried.
// Reporter.StepStarted/StepFinished are told each step (outcome recovered,
// failed or error, and a detail of what was done and seen);
// Reporter.Recovered after the rung that brought the gateway back (after a
// reboot InstanceID == PreviousInstanceID); when every rung's budget is
// spent and the gateway is still unhealthy, Reporter.GaveUp once per window
// and nothing more is tried until attempts age out of the window. Health
// unknown (no login possible) with a fine instance is never acted on.
//
// # Snapshots (SnapshotDue)
//
// For each gateway, under the same lease (so never during a recovery, and
// never while a recovery is unfinished): when no snapshot was taken (or is
// pending) within SNAPSHOT_RPO and a health check finds the gateway
// healthy, CreateImage of its instance without a reboot, tagged
// mediagw:gateway, mediagw:snapshot=rpo, mediagw:healthy=true,
// mediagw:instance. Retention: failed ones, those beyond the newest
// SNAPSHOTS_KEEP and those older than SNAPSHOTS_MAX_AGE are deregistered
// with their EBS snapshots — except the newest healthy available one,
// which is always kept. Locally (simulator) no snapshots are taken.
//
// # Where a gateway's resources are found
//
// Nothing per gateway beyond GATEWAYS (<id>=<ISAPI URL>) and its password
// parameter <PARAMETER_ROOT>/gateways/<id>/Password: the Elastic IP is the
// address tagged mediagw:gateway=<id>; the instance is the one it is
// associated with (else the newest live instance with that tag); snapshots
// are the AMIs with that tag.
package recovery
