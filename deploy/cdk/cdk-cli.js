// Runs the pinned CDK CLI (CDK_CLI_DIR, installed by scripts/bootstrap.sh)
// with the arguments it is given, adding `--parameters Password=…` from
// MEDIAGW_PASSWORD inside this process: the password is never in any
// process's arguments (ps, /proc/<pid>/cmdline), and the CDK app this
// starts does not inherit it.
'use strict';
const path = require('path');

const args = process.argv.slice(2);
const password = process.env.MEDIAGW_PASSWORD;
delete process.env.MEDIAGW_PASSWORD;
if (password) {
  args.push('--parameters', 'Password=' + password);
}
const dir = process.env.CDK_CLI_DIR;
if (!dir) {
  console.error('cdk-cli.js: CDK_CLI_DIR is not set (scripts/deploy.sh sets it)');
  process.exit(2);
}
process.setSourceMapsEnabled(true); // as the CLI's own bin/cdk does
require(path.join(dir, 'node_modules', 'aws-cdk', 'lib')).cli(args);
