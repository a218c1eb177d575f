// Benchmark half of bench/by-ids.sh: the official Node client (@mft/moneyhub-api-client
// 5.2.1, unmodified) fetching a list of transaction ids with getTransactions({ids}) in
// batches of 50. MH_CONCURRENCY batches are in flight at once (1 = a plain loop).
"use strict";
const fs = require("fs");
const { Moneyhub } = require("@mft/moneyhub-api-client");

async function main() {
  const base = process.env.MH_BASE;
  const userId = process.env.MH_USER;
  const ids = fs.readFileSync(process.env.MH_IDS, "utf8").split("\n").filter(Boolean);
  const concurrency = Number(process.env.MH_CONCURRENCY || "1");
  const mh = await Moneyhub({
    identityServiceUrl: base,
    resourceServerUrl: `${base}/v3`,
    options: { timeout: 60000 },
    client: {
      client_id: "sandbox-client", client_secret: "sandbox-secret",
      token_endpoint_auth_method: "client_secret_basic", id_token_signed_response_alg: "RS256",
      request_object_signing_alg: "none", redirect_uri: "http://127.0.0.1:9999/cb", response_type: "code", keys: [],
    },
  });
  const batches = [];
  for (let i = 0; i < ids.length; i += 50) batches.push(ids.slice(i, i + 50));
  const started = process.hrtime.bigint();
  const found = [];
  let missing = 0;
  let next = 0;
  async function worker() {
    while (next < batches.length) {
      const batch = batches[next++];
      const res = await mh.getTransactions({ userId, params: { ids: batch } });
      found.push(...res.data);
      missing += (res.meta.missingTransactionIds || []).length;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.log(JSON.stringify({ client: "official-node-5.2.1", concurrency, ids: ids.length, found: found.length, missing, ms: Number(ms.toFixed(1)), peakRssKiB: process.resourceUsage().maxRSS }));
}
main().catch((e) => { console.error(e.message); process.exit(1); });
