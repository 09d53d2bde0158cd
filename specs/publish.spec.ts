// Docker's -p forms.
import { describe, expect, it } from 'vitest';
import { parsePublish } from '../harness/scenario/publish.js';

describe('-p parser', () => {
  it('reads every form', () => {
    expect(parsePublish('8080:80')).toEqual([{ raw: '8080:80', hostIp: undefined, hostPort: 8080, hostPortEnd: 8080, containerPort: 80, proto: 'tcp' }]);
    expect(parsePublish('127.0.0.1:8080:80/udp')[0]).toMatchObject({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, proto: 'udp' });
    expect(parsePublish('203.0.113.2::81')[0]).toMatchObject({ hostIp: '203.0.113.2', hostPort: undefined, containerPort: 81 });
    expect(parsePublish(80)[0]).toMatchObject({ hostIp: undefined, hostPort: undefined, containerPort: 80, proto: 'tcp' });
    expect(parsePublish('53/udp')[0]).toMatchObject({ hostPort: undefined, containerPort: 53, proto: 'udp' });
  });

  it('expands ranges of equal length into one mapping per port', () => {
    expect(parsePublish('8000-8002:80-82').map((p) => `${p.hostPort}>${p.containerPort}`)).toEqual(['8000>80', '8001>81', '8002>82']);
  });

  it('explains what is wrong', () => {
    expect(() => parsePublish('80:')).toThrow(/is not a -p form \(expected hostPort:containerPort/);
    expect(() => parsePublish('70000:80')).toThrow('"70000:80": port 70000 is out of range 1-65535');
    expect(() => parsePublish('8000-8001:80')).toThrow(/ranges must have the same length/);
    expect(() => parsePublish('90-80')).toThrow(/a range must go upwards/);
  });
});
