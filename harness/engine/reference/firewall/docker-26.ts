// The rule layout of Docker 26 (26.1.5, Debian trixie's docker.io): Docker 20.10's, rule for
// rule. Measured, not assumed: the catalogue run on the real 26.1.5 beside reference:docker-20.10
// (`netconform run --engine reference:docker-26,docker:26`) agrees in every iptables table. What
// 26 changes lies outside the firewall (internal networks without a default route, the
// generated resolv.conf): see ../releases.ts. ip6tables stays off by default until 27.
import { Docker2010Firewall } from './docker-20.10.js';

export class Docker26Firewall extends Docker2010Firewall {
  override readonly profile: string = 'docker-26';
}
