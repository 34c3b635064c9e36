/** An SDK client of a local cluster that trusts its development attestation root and image. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pemToDer } from "../../src/attestation/aws-root.ts";
import type { LocalCluster } from "../../src/cluster/local-cluster.ts";
import { TssClient } from "../../src/client/index.ts";

export function connectTrusting(cluster: LocalCluster, timeoutMs = 120_000): Promise<TssClient> {
  return TssClient.connect({
    ...cluster.client,
    timeoutMs,
    trust: {
      roots: [
        {
          der: pemToDer(readFileSync(join(cluster.dataDir, "dev-attestation-root.pem"), "utf8")),
          development: true,
        },
      ],
      allowDevelopment: true,
      imageHashes: [cluster.image.pcr0Hex],
    },
  });
}
