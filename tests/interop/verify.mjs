// Verifies a Sigstore bundle with the reference JavaScript verifier, @sigstore/verify.
//
//   node verify.mjs BUNDLE.json PUBLIC_KEY.pem [ARTIFACT]
//
// The key is trusted under its id (hex SHA-256 of its SPKI DER), which the bundle must name as
// its public-key hint. kiln has no transparency log, certificate or timestamp authority, so
// every threshold is 0. With ARTIFACT, a subject of the in-toto statement must have its
// SHA-256. Exits 0 when verified, 1 with the reason otherwise.
import { readFileSync } from 'node:fs';
import { createHash, createPublicKey } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const [bundlePath, keyPath, artifactPath] = process.argv.slice(2);
if (!bundlePath || !keyPath) {
  console.error('usage: node verify.mjs BUNDLE.json PUBLIC_KEY.pem [ARTIFACT]');
  process.exit(2);
}

try {
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, 'utf8')));
  const der = createPublicKey(readFileSync(keyPath, 'utf8')).export({ type: 'spki', format: 'der' });
  const keyId = createHash('sha256').update(der).digest('hex');
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const keys = { [keyId]: { rawBytes: der, keyDetails: 'PKIX_ECDSA_P256_SHA_256' } };
  const verifier = new Verifier(toTrustMaterial(trustedRoot, keys), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));

  const envelope = bundle.content.dsseEnvelope;
  const statement = JSON.parse(Buffer.from(envelope.payload).toString('utf8'));
  if (artifactPath) {
    const digest = createHash('sha256').update(readFileSync(artifactPath)).digest('hex');
    if (!statement.subject.some((s) => s.digest && s.digest.sha256 === digest)) {
      throw new Error(`no subject has sha256 ${digest}`);
    }
  }
  console.log(`verified: ${statement.predicateType} signed by ${keyId}`);
} catch (err) {
  console.error(`not verified: ${err.message}`);
  process.exit(1);
}
