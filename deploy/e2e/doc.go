// Package e2e holds the end-to-end tests of mediagw: the real binaries
// started as processes against a private set of emulator resources, driven
// through the gateway simulator's admin API and checked in S3, DynamoDB,
// the services' metrics and the process table. It has no code outside its
// tests.
//
// TestRecordingPath (issue 5) builds gateway-sim, device-watcher,
// task-manager and recorder with `go build`, applies topology.json under a
// unique prefix, and starts the simulator (three cameras, started with the
// gateway's desired password from SSM and no BootstrapPassword parameter,
// so no configurator is needed), the
// device-watcher and the task-manager with the local launcher, on free
// loopback ports, with short timings (4 s segments, 3 s offline
// hysteresis, 1 s poll). The recorders' S3 (AWS_ENDPOINT_URL_S3, passed on
// by the launcher) goes through a TCP switch in front of the emulator.
// Every device event is delivered to the task-manager twice. It checks:
//
//   - every camera's segments in S3: H.264 by ffprobe, as long as their
//     keys and metadata say, within one GOP of the target, consecutive ones
//     at most one frame apart;
//   - one recorder per camera despite the duplicates, the one its
//     ip-camera row names, with the services' AWS endpoint variables; a
//     recorder is a task, and the three cameras, online together, share one
//     (TASK_CAPACITY's default packs them; a recorder's cameras are its
//     RECORDER_DEVICE_INDEX and the <device>/ entries of RECORDER_CHANNELS);
//     the gateway password in no process's command line or environment, nor
//     in any log;
//   - a recorder killed (SIGKILL): any child of it dies too, a failure is
//     counted for each camera it recorded, and they come back together on
//     one new recorder; new segments arrive;
//   - a camera offline past the hysteresis: its recorder exits, its row
//     says stop/idle, the other cameras of its task come back at once on one
//     recorder without it; a late, older DeviceOnline does not bring it back;
//   - S3 unreachable for 10 s: nothing reaches S3 meanwhile, and afterwards
//     a camera's segments form one gapless run from one replacement of its
//     recorder to the next;
//   - cameras deleted (one offline, one recording): rows gone, recorder
//     stopped, the cameras it shared it with on a new one.
//
// With MEDIAGW_TEST_AWS=localstack (`make test-localstack`) it runs on
// LocalStack, DynamoDB and ECS on moto (testsupport/awstest).
//
// TestGatewayRecoveryHang and TestGatewayRecoverySick (issue 11) start the
// same system plus the health-sentinel (startSystem with withSentinel),
// which recovers the simulated machine through the simulator's admin API
// (GATEWAY_SIM_ADMIN_URL, as `make run` does; a 5 s reboot) with its
// detection at the defaults (20 s health check, 10 s timeouts), and read
// every alert mail from the mediagw-alert-mail queue from the start. Hang:
// POST /admin/hang → one "API does not answer" mail → one machine reboot
// (the EC2-reboot rung; no ISAPI reboot) → every camera has a segment in
// S3 started after the gateway came back → one RESOLVED mail. Sick: the
// device status the health check reads answers 500 (POST /admin/faults;
// the test lifts the fault while the gateway is down for its reboot, the
// reboot's cure) → one "API answers with errors" mail → one reboot, asked
// through ISAPI (the simulator's counters) → cameras recording again → one
// RESOLVED mail. Both check: exactly these two mails, the gateway's
// incident (mediagw-incidents) resolved with both mails sent and its one
// rung recorded as recovered, no other incident, one GatewayRecovered (the
// same machine before and after) in the configurator's queue, no failed
// login in the simulator's ledger, no secret in logs or processes. They
// log the times the floors are about (a "MEASURED" line: fault →
// first mail, → gateway back, → every camera recording again) without
// asserting them. About 100 s and 60 s.
//
// TestComposeOnLocalStack (issue 13) runs docker-compose.yml on the host,
// without Docker: a private LocalStack serving what compose asks of it
// (DynamoDB, which LocalStack cannot run outside its container, on a
// private moto), then every service of the file in dependency order with
// its command and environment as written, only host names, ports, volumes
// and the image's /usr/local/bin translated to the host. It checks that
// compose asks only for services of LocalStack's free build and that the
// provisioning step passes against them, that every long-lived service
// passes its health check, that with no manual step every camera is
// recorded, that a killed recorder is replaced, that every queue compose
// names had messages handled and none dead-lettered, and that the gateway
// saw no failed login (about 45 s).
//
// Run them with `go test ./e2e/` in deploy (about 50 s and 45 s; a private
// emulator is started unless AWS_ENDPOINT_URL is set). Service logs go to
// files in the test's temporary directory and are printed when it fails.
package e2e
