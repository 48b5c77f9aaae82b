// Package gatewaysim simulates a Hikvision media gateway for tests and for
// local runs: the ISAPI JSON endpoints the project uses, HTTP Digest auth
// with the real per-source-IP lockout, a device-management event stream,
// live H.264 (with AAC if asked) over RTSP for every camera channel (package rtsp), scenario
// control through Go methods, a loopback-only admin HTTP API and scenario
// files, fault injection, and the machine-level events the health-sentinel
// recovers from: a hung gateway software (Hang), a reboot (Reboot) and a
// replacement by a new machine (Replace).
//
// Logins: ISAPI and RTSP share one per-source-IP lockout and one ledger of
// failed logins (Server.LoginFailures, GET /admin/login-failures), timed
// by the gateway's clock (Config.Now). LoginFaults change how failed logins
// are answered, on both protocols: no answer (Lost401), a late 401
// (Late401), 401s without a body and so without lock fields (NoLockFields),
// Basic-only authentication (BasicOnly). Faults (Fault) fire after
// authentication and leave logins alone.
//
// Start one with Start (or gatewaysimtest.Start in tests). The wire shapes,
// including the ones chosen where the real API is unconfirmed (deviceList
// paging fields, the event stream), are documented in
// services/gateway-sim/README.md; the simulator is the contract the client
// package isapi is tested against.
//
// Conventions:
//   - RTSP URL path of a channel: /Streaming/Channels/<devIndex>/<channel>0<1 main | 2 sub>
//     (see StreamPath).
//   - Event stream: multipart/mixed, boundary StreamBoundary, one JSON part per
//     event ({"eventType":"deviceMgmt","dateTime":…,"DeviceMgmtEvent":{seq,type,devIndex,devName,devStatus}})
//     or heartbeat ({"eventType":"heartbeat","dateTime":…}), each with Content-Length.
//   - HTTP status follows the ResponseStatus statusCode: 1 and 7 → 200,
//     2 → 503, 3 → 500, 4 → 403, 5 and 6 → 400; authentication → 401.
package gatewaysim
