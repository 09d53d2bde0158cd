// A docker run that gets SIGKILLed: starts a daemon in a lab, runs a container with a
// published port, prints what it made, and waits to be killed (no teardown ever runs).
import { DaemonPool } from '../../dist/harness/engine/docker/pool.js';
import { loadScenarioText } from '../../dist/harness/scenario/load.js';

const sc = loadScenarioText('id: killed\ntitle: killed\ncovers: [EG-01]\ncontainers: {}\nexpect: [{ id: EG-01, rules: { table: nat, chain: POSTROUTING, policy: ACCEPT } }]\n', 'killed.yaml');
const pool = new DaemonPool();
const d = await pool.acquire(sc.hosts[0]);
await pool.prepare(d, sc.hosts[0], () => {});
const c = await d.docker.createContainer({ Image: 'netconform/busybox:probe', Cmd: ['/bin/sleep', '1000'], HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } });
await c.start();
const info = await c.inspect();
console.log(JSON.stringify({ stateDir: d.paths.stateDir, hostNs: d.hostNs, containerPid: info.State.Pid, cgroupParent: d.paths.cgroupParent }));
setInterval(() => {}, 1000);
