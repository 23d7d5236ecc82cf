// Signs an in-toto statement with the reference JavaScript signer, @sigstore/sign's
// DSSEBundleBuilder, using a new ECDSA P-256 key and no witnesses (no log, no timestamps).
//
//   node sign.mjs STATEMENT.json OUT_BUNDLE.json OUT_PUBLIC_KEY.pem
//
// The bundle names the key by its id (hex SHA-256 of its SPKI DER); the public key is written
// so that kiln can be told to trust it.
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder } from '@sigstore/sign';

const [statementPath, bundlePath, publicKeyPath] = process.argv.slice(2);
if (!statementPath || !bundlePath || !publicKeyPath) {
  console.error('usage: node sign.mjs STATEMENT.json OUT_BUNDLE.json OUT_PUBLIC_KEY.pem');
  process.exit(2);
}

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const der = publicKey.export({ type: 'spki', format: 'der' });
const publicPem = publicKey.export({ type: 'spki', format: 'pem' });
const hint = createHash('sha256').update(der).digest('hex');

const signer = {
  // ECDSA over SHA-256, ASN.1 DER: what Sigstore verifiers expect for P-256 keys.
  sign: async (data) => ({
    signature: sign('sha256', data, privateKey),
    key: { $case: 'publicKey', publicKey: publicPem, hint },
  }),
};
const builder = new DSSEBundleBuilder({ signer, witnesses: [] });
const bundle = await builder.create({
  data: readFileSync(statementPath),
  type: 'application/vnd.in-toto+json',
});
writeFileSync(bundlePath, JSON.stringify(bundleToJSON(bundle), null, 2));
writeFileSync(publicKeyPath, publicPem);
console.log(`signed with ${hint}`);
