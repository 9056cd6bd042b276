/**
 * Test certificates made with the openssl CLI in a temporary directory: a CA
 * and leaves signed by it (ECDSA or RSA, chosen names, optionally expired).
 * Nothing here is committed; every run makes its own keys.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Leaf {
  cert: string;
  key: string;
  /** The chain file: leaf then CA. */
  chain: string;
}

export class TestCa {
  readonly dir = mkdtempSync(join(tmpdir(), 'switchyard-certs-'));
  readonly cert: string;
  readonly key: string;
  #n = 0;

  constructor(name = 'Switchyard Test CA') {
    this.cert = join(this.dir, 'ca.pem');
    this.key = join(this.dir, 'ca.key');
    this.#openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.key, '-out', this.cert, '-days', '30', '-subj', `/CN=${name}`);
    writeFileSync(join(this.dir, 'ca.cnf'), '[ca]\ndefault_ca=d\n[d]\ndir=.\ndatabase=index.txt\nnew_certs_dir=.\nunique_subject=no\nserial=serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\ncommonName=supplied\n');
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'serial'), '1000\n');
  }

  #openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  /** A leaf for `names` (the first is the CN). `expired` backdates it to 2020. `file` picks the output name. */
  leaf(names: string[], opts: { rsa?: boolean; expired?: boolean; file?: string } = {}): Leaf {
    const base = join(this.dir, opts.file ?? `leaf${++this.#n}`);
    const key = `${base}.key`;
    const csr = `${base}.csr`;
    const cert = `${base}.pem`;
    const alg = opts.rsa ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    const san = names.map((n) => `DNS:${n}`).join(',');
    this.#openssl('req', ...alg, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`);
    const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z'] : ['-days', '30'];
    this.#openssl('ca', '-batch', '-config', 'ca.cnf', '-cert', this.cert, '-keyfile', this.key, '-in', csr, '-out', cert, '-notext', ...dates);
    const chain = `${base}.chain.pem`;
    execFileSync('sh', ['-c', `cat "${cert}" "${this.cert}" > "${chain}"`]);
    return { cert, key, chain };
  }
}
