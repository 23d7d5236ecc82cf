// Writes a new ECDSA P-256 key pair in cosign's encrypted private-key format, implemented here
// from cosign's description (scrypt N=32768 r=8 p=1 over the password, NaCl secretbox over the
// PKCS#8 DER, JSON in a PEM block), independently of kiln and of sigstore-rs.
//
//   node cosign-key.mjs PASSWORD OUT.key OUT.pub
import { writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, scryptSync } from 'node:crypto';
import nacl from 'tweetnacl';

const [password, keyPath, pubPath] = process.argv.slice(2);
if (password === undefined || !keyPath || !pubPath) {
  console.error('usage: node cosign-key.mjs PASSWORD OUT.key OUT.pub');
  process.exit(2);
}

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
const salt = randomBytes(32);
const nonce = randomBytes(24);
const params = { N: 32768, r: 8, p: 1 };
const secret = scryptSync(Buffer.from(password, 'utf8'), salt, 32, { ...params, maxmem: 128 * 1024 * 1024 });
const sealed = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(secret));
const doc = {
  kdf: { name: 'scrypt', params, salt: salt.toString('base64') },
  cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
  ciphertext: Buffer.from(sealed).toString('base64'),
};
const body = Buffer.from(JSON.stringify(doc)).toString('base64').match(/.{1,64}/g).join('\n');
writeFileSync(keyPath, `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n${body}\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n`);
writeFileSync(pubPath, publicKey.export({ type: 'spki', format: 'pem' }));
