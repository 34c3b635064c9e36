/** The tss --help texts: the tool's, the wallet group's and each command's. */
import { DEFAULT_TIMEOUT_MS } from "../client/index.ts";
import { ID_RULE } from "../shared/wire/patterns.ts";
import { DEFAULT_KEY_TYPE, KEY_TYPES } from "../shared/wire/key-type.ts";
import { COMMANDS, type Command } from "./args.ts";

const GLOBAL_HELP = `Global options:
  --url URL            the MQTT broker: mqtt://host:port, mqtts://host:port, ws://… or wss://…
                       (default: env TSS_MQTT_URL, else the "url" of the local
                       cluster's data/cluster/client.json, if that file exists)
  --username NAME      (default: env TSS_MQTT_USERNAME, else client.json when the URL came from it)
  --password PASSWORD  (default: env TSS_MQTT_PASSWORD, else client.json when the URL came from it)
  --ca FILE            CA certificate (PEM) for mqtts:// and wss:// (default: env TSS_MQTT_CA)
  --request-id ID      ${ID_RULE}; default a fresh random id.
                       Repeating a request with the same id returns its stored
                       result instead of running the ceremony again.
  --timeout SECONDS    give up waiting after this long (default ${DEFAULT_TIMEOUT_MS / 1000})
  --aws-root FILE      the AWS Nitro root (PEM, fingerprint-pinned) that enclaves' attestation
                       documents must chain to (default: env TSS_AWS_ROOT)
  --dev-root FILE      a development attestation root; trusted only with --allow-development
                       (default: env TSS_DEV_ROOT, else the local cluster's, from client.json)
  --image PCR0         an allowed enclave image hash (repeatable; default: env TSS_IMAGES,
                       comma-separated, else the local cluster's, from client.json)
  --allow-development  trust a development root (env TSS_ALLOW_DEVELOPMENT=1); never in production
                       With a root configured, every wallet answer must be vouched for by
                       all n holders' attested enclaves and signatures by that verified key.
  --json               print exactly one JSON document on stdout: the result, or
                       {"error": {code, message, node, requestId}}; no progress lines
  -h, --help           show help (also: tss help COMMAND)
  -V, --version        print the version and git commit of this build (given alone: tss --version)
  --                   ends the options: what follows is an argument, e.g. a wallet id starting with -

Options take their value as --name VALUE or --name=VALUE; a value that starts
with -- must be given as --name=VALUE.

The client file (another path via env TSS_CLIENT_CONFIG) is JSON
{"url": …, "username": …, "password": …}; it is used only when neither --url
nor TSS_MQTT_URL is given, so its credentials never go to another broker.`;

export const MAIN_HELP = `Usage: tss [options] COMMAND

Threshold-ECDSA (secp256k1) wallets on the TSS signing cluster, over MQTT.
Every wallet names its key type; the only one today is ${DEFAULT_KEY_TYPE}.

Commands:
  wallet create [--threshold T] [--parties N]  create a wallet by distributed key generation
  wallet show ID                               show a wallet, verified against its attested enclaves
  wallet list                                  list the wallets the online nodes hold
  wallet refresh ID [--key FILE]...            re-randomise every share of a wallet (same key)
  wallet policy --wallet ID --approver PUB... [--quorum M] --key FILE...
                                               replace a wallet's approval policy, approved
                                               under its current one
  wallet retire --wallet ID --key FILE...      retire a wallet for good: every node wipes and
                                               deletes its share, approved under its policy
  wallet import --secret-key-file F --approver PUB... --admin-key FILE... [--key FILE]...
                                               bring an existing key in as a new wallet, sealed
                                               to one attested enclave and dealt to n
  wallet repair --wallet ID --party K --to NODE --target-pcr4 HEX --key FILE...
                                               move party K of a wallet to another node (share
                                               repair, then a refresh of all n)
  wallet reshare --wallet ID --threshold T --nodes N1,N2,... --key FILE...
                                               reshare a wallet's key to a new committee (add
                                               or drop nodes, change t; same key and address)
  sign --wallet ID --digest HEX [--path P] [--key FILE]...
                                               sign a 32-byte digest, approved by the key files
  nodes                                        list the online signing nodes
  audit --db PATH [--wallet ID] [--since TIME] show a node's audit log and check its hash chain
                                               (on the node, against its database file; no broker)
  key new --out FILE [--algorithm A]           create an approver key file (no broker)
  key show FILE                                show a key file's key id and public key (no broker)
  policy --pcr0 HEX (--node-pcr NAME=HEX... | --any-node) --admin-role ARN --enclave-role ARN
                                               print the KMS key policy that admits exactly
                                               that enclave image and those nodes (no broker)

Run tss COMMAND --help for a command's details.

${GLOBAL_HELP}

Exit status: 0 success, 1 the operation failed (for audit: the chain is broken), 2 usage or
configuration error.
`;

export const WALLET_HELP = `Usage: tss wallet SUBCOMMAND [options]

Subcommands:
  create [--threshold T] [--parties N]   create a wallet by distributed key generation
  show ID                                show a wallet
  list                                   list the wallets
  refresh ID                             re-randomise every share of a wallet
  policy --wallet ID --approver PUB... --key FILE...
                                         replace a wallet's approval policy
  retire --wallet ID --key FILE...       retire a wallet for good (irreversible)
  import --secret-key-file F ...         bring an existing secp256k1 key in as a new wallet
  repair --wallet ID --party K --to NODE move a party of a wallet to another node (share repair)
  reshare --wallet ID --threshold T --nodes N1,N2,...
                                         reshare a wallet to a new committee (same key)
Run tss wallet SUBCOMMAND --help for details.
`;

export const KEY_HELP = `Usage: tss key SUBCOMMAND [options]

Approver keys sign approvals of a wallet's operations (sign, refresh, policy
change, repair, reshare, retirement) for its approval policy; administrator keys
approve creating and importing wallets. These commands only create and read key
files on this machine and never connect to the broker. A request sends
approvals by the key files given with --key FILE (repeatable) on sign and
wallet refresh, policy, retire, repair, reshare and import; wallet create --approver PUB... --quorum M names a new
wallet's approvers and --admin-key FILE... the cluster administrators who
approve creating it.

Subcommands:
  new --out FILE [--algorithm ed25519|p256]   create a key file
  show FILE                                   show a key file's key id and public key

Run tss key SUBCOMMAND --help for details.
`;

const COMMAND_HELP: Record<Command, string> = {
  "wallet create": `Usage: tss wallet create [--threshold T] [--parties N] [--key-type K] [options]

Creates a T-of-N wallet by distributed key generation among N online nodes;
no machine ever holds the whole private key. Prints the wallet id, its key
type, the public key and its Ethereum address, and the nodes by party index.
Progress goes to stderr, a line per phase.

  --key-type K    the wallet's key type: ${KEY_TYPES.join(", ")} (the default and only one today)
  --threshold T   signers needed for a signature (the nodes default to 3)
  --parties N     nodes holding a share (the nodes default to 5)
  --approver PUB  an approver of the wallet's sign and refresh requests (repeatable):
                  a public key as tss key show prints it, ed25519:HEX or p256:HEX
  --quorum M      how many distinct approvers must approve each request (needed with
                  more than one --approver); every node's enclave seals this policy
  --admin-key F   a cluster administrator's key file approving this wallet (repeatable);
                  the enclaves accept only the administrators' policy built into their image
  --wallet-id ID  the new wallet's id (default a random w_...; the approvals name it)
`,
  "wallet show": `Usage: tss wallet show ID [options]

Shows a wallet: its key type, public key and Ethereum address, threshold, parties,
share generation and the nodes holding its shares, by party index, once
every holder's enclave has vouched for it: each signed statement must carry
a valid signature by the channel key its attestation document binds, every
document must chain to a trusted root (--aws-root, or --dev-root with
--allow-development) and show an allowed image (--image), and all n
statements must agree with each other and with the answer. Otherwise it fails
with unverified_wallet, naming the node at fault where one is.
`,
  "wallet list": `Usage: tss wallet list [options]

Lists the wallets held by the nodes that are online now.
`,
  "wallet refresh": `Usage: tss wallet refresh ID [options]

Re-randomises every share of the wallet (all of its nodes must be online).
The public key and address stay the same; the share generation goes up by
one, and shares of older generations can no longer sign.
Progress goes to stderr, a line per phase.

  --key FILE      an approver key file approving this refresh (repeatable);
                  a wallet with a policy needs a quorum of its approvers
`,
  "wallet policy": `Usage: tss wallet policy --wallet ID --approver PUB... [--quorum M] --key FILE... [options]

Replaces the wallet's approval policy. The key files approve the change under
the current policy (a quorum of its approvers); every holder's enclave checks
that against the policy sealed with its share, and the change runs as a
refresh whose new shares are sealed with the new policy: applied by all of the
wallet's nodes (all must be online) or by none. The share generation goes up
by one; the key and address stay the same. From then on only the new
approvers can approve the wallet's requests.

  --wallet ID     the wallet
  --approver PUB  an approver of the new policy (repeatable), as tss key show prints it
  --quorum M      how many distinct new approvers must approve each request (needed with
                  more than one --approver)
  --key FILE      a current approver's key file approving the change (repeatable)
`,
  "wallet import": `Usage: tss wallet import --secret-key-file FILE --approver PUB... [--quorum M]
       --admin-key FILE... [--key FILE]... [--threshold T] [--parties N] [--wallet-id ID]
       [--node NODE] [--key-type K] [options]

Brings an existing secp256k1 key (an address that already holds funds) in as
a new T-of-N wallet with the same public key and address. The CLI fetches one
node's enclave attestation document, verifies it like a wallet statement
(--aws-root, or --dev-root with --allow-development, and --image are
required), and seals the key to that enclave with HPKE (RFC 9180); only
ciphertext reaches the broker and the nodes. That enclave splits the key into
N shares, sends each other holder's enclave its share end to end, forgets
them, and the N holders refresh at once, so what the dealing enclave saw no
longer combines. The answer is vouched for by all N enclaves and must carry
the key's own public key.

  --secret-key-file F  a file with the 32-byte secret key in hex, optionally followed by
                       whitespace and its 32-byte BIP-32 chain code in hex (child keys
                       then match the original wallet's; the chain code becomes public
                       wallet data, as every wallet's is); never give the key on the
                       command line
  --approver PUB       an approver of the new wallet's requests (repeatable)
  --quorum M           how many distinct approvers must approve each request
  --admin-key F        a cluster administrator's key file approving the import of exactly
                       this sealed key (repeatable; operation "import")
  --key FILE           an approver of the new policy approving the refresh that follows
                       (repeatable; default: the --admin-key files)
  --threshold T        default 3
  --parties N          default 5, at most 5 (one dealt share must fit one peer message)
  --wallet-id ID       the new wallet's id (default a random w_...)
  --node NODE          the node whose enclave the key is sealed to (default: any online)
  --key-type K         the key's type: ${KEY_TYPES.join(", ")} (the default and only one today)
`,
  "wallet repair": `Usage: tss wallet repair --wallet ID --party K --to NODE --target-pcr4 HEX --key FILE... [options]

Moves party K of the wallet to node NODE, replacing a node lost for good. At
least t current holders rebuild that party's share for NODE's enclave, sealed
end to end to its attested channel key (no host sees it); then all n holders
(NODE in, the previous holder out) refresh at once, so whatever the previous
holder kept no longer combines. The key files approve both steps under the
wallet's policy (operation "repair", naming party K and NODE's machine by its
PCR4; then "refresh"). The PCR4 approved is --target-pcr4, from your own
inventory: the attestation document answered for NODE is verified here first
(--aws-root and --image, or --allow-development for a local cluster) and must
carry that same PCR4, since any node, or the broker, could answer for NODE
with its own enclave's document. The output names the PCR4 approved. Needs
every other holder online. A previous holder that comes back has its own
enclave verify the newer generation's signed statements and seal receipts
from its peers, then securely deletes its rows of the wallet. The same
--request-id again gets the stored result; nothing runs twice.

  --wallet ID     the wallet
  --party K       the party index to move (1..n)
  --to NODE       the node that receives it (online, attested, not a holder)
  --target-pcr4 HEX  NODE's machine identity (PCR4, 96 hex characters) from your
                  inventory; the approval names it
  --key FILE      an approver key file approving the repair (repeatable)
`,
  "wallet reshare": `Usage: tss wallet reshare --wallet ID --threshold T --nodes N1,N2,... --key FILE... [options]

Reshares the wallet's key to a new committee: T-of-(the number of --nodes),
same public key, chain code and address. Every current holder deals a fresh
sharing of its share to the new committee's attested enclaves, sealed end to
end (no host sees a share or fragment), and keeps its party index; the nodes
added take the next indices in the order given. The new shares are committed
as a refresh's: each member's enclave activates its new share only once it has
verified that all members stored theirs, and each previous holder's node
deletes its old share in that same step, so pre-reshare shares no longer
combine with current ones. The key files approve it under the wallet's policy
or as cluster administrators (operation "reshare", naming T and every member's
node id and machine PCR4). Each member's attestation document is verified here
first (--aws-root and --image, or --allow-development for a local cluster) and
its PCR4 approved: a current holder's from its verified wallet statement, an
added node's from --target-pcr4 NODE=HEX, your own inventory, which is
required for every added node (its document must carry that PCR4), since any
node, or the broker, could answer for NODE with its own enclave's document.
The approval also names the wallet's current generation, so it covers this
one reshare only. Needs every current holder that stays online (at least the
old threshold of them; they deal). A holder left out of --nodes leaves: right
after the commit its own enclave verifies the new members' statements and
live proofs, and only then its node deletes its share (an offline one does so
when it is back). Holders that stay keep their index, so only holders of the
highest indices can leave (others: refused). The result lists every leaver
and whether it has deleted its old share. Until each has, the leavers still
hold the old sharing: refused unless asked for are leavers that reach the old
threshold (together they could still sign) and offline leavers (nobody can
ask them to delete until they are back).

  --wallet ID          the wallet
  --threshold T        the new threshold (2..number of --nodes)
  --nodes N1,N2,...    the whole new committee: the current holders that stay and the nodes to add
  --target-pcr4 NODE=HEX  a member's machine identity (PCR4, 96 hex characters) from
                       your inventory (repeatable; required for every added node)
  --key FILE           an approver key file approving the reshare (repeatable)
  --allow-leavers-quorum  let the old threshold or more holders leave: WEAKENS the
                       wallet until every leaver has deleted its old share
  --allow-offline-leavers  let offline holders leave: each keeps its old share
                       until it is back online and checks
`,
  "wallet retire": `Usage: tss wallet retire --wallet ID --key FILE... [options]

Retires the wallet for good. The key files approve it under the wallet's
policy (a quorum of its approvers, operation "retire"); every holder's
enclave checks that against the policy sealed with its share, wipes the share
and refuses the wallet from then on, and every holder's node overwrites and
deletes the wallet's rows and records in its audit log who approved. Needs
at least n - t + 1 of its parties online or retired earlier, so that fewer
than t shares remain anywhere; the answer names the parties whose holders
were offline (their rows go when the retirement is repeated while they are
online).
Afterwards the wallet answers not_found. There is no undo.

  --wallet ID     the wallet
  --key FILE      an approver key file approving the retirement (repeatable)
`,
  sign: `Usage: tss sign --wallet ID --digest HEX [--path m/0/7] [options]

Signs a 32-byte digest with a wallet's key, or with a child key derived from
it along a non-hardened BIP-32 path. The digest is the hash you computed
(for Ethereum, the keccak-256 of what you sign); it is not hashed again.
The signature is verified here against the returned public key before it is
printed: r, s, recovery id, the 65-byte Ethereum form (r || s || v,
v = 27 + recovery id) and DER. Progress goes to stderr, a line per phase.

  --wallet ID     the wallet
  --digest HEX    64 hex characters (0x optional)
  --path P        derive the signing key along P, e.g. m/0/7
  --key FILE      an approver key file approving this digest (repeatable); every
                  signing node's enclave refuses without a quorum of the wallet's approvers
`,
  nodes: `Usage: tss nodes [options]

Lists the signing nodes that are online: node id, status, since when, and
the PCR0 measurement of the enclave image each one reports.
`,
  "key new": `Usage: tss key new --out FILE [--algorithm ed25519|p256] [--json]

Creates a new approver key and writes it to FILE (JSON, mode 0600; an
existing file is never replaced). FILE holds the secret key: keep it like a
password. Prints the key id, the algorithm and the public key, never the
secret key; put the public key in a wallet's approval policy.

  --out FILE          where to write the key file
  --algorithm A       ed25519 (default) or p256 (ECDSA P-256 over SHA-256)
  --json              print {"keyId", "algorithm", "publicKey", "file"}
`,
  "key show": `Usage: tss key show FILE [--json]

Prints a key file's key id, algorithm and public key (never the secret key).
The file is refused if other users may read or write it (chmod 600), or if
its recorded public key or key id do not match its secret key.

  --json              print {"keyId", "algorithm", "publicKey", "file"}
`,
  policy: `Usage: tss policy --pcr0 HEX [--pcr0 HEX] (--node-pcr NAME=HEX... | --any-node)
                  --admin-role ARN --enclave-role ARN

Prints (on stdout) the key policy for the share-wrapping KMS key: it lets
enclaves of that image use kms:Decrypt and kms:GenerateDataKey only with an
attested Recipient (kms:RecipientAttestation:ImageSha384 = PCR0), each node
only with its own identity (kms:RecipientAttestation:PCR4) and only for its
own shares' encryption context; and it lets the administrators manage the key
but never use it. Install it with
  aws kms put-key-policy --key-id KEY --policy-name default --policy file://policy.json
Nothing is contacted; the command only checks and prints.

  --pcr0 HEX          the enclave image's PCR0 (96 hex characters, from the EIF
                      build). Give two while an image upgrade rolls out (old and
                      new); then print the policy again with the new one only.
  --node-pcr NAME=HEX a node's PCR4 (its parent instance's identity), repeatable;
                      NAME is the node id. One of it or --any-node is required.
  --any-node          bind the policy to no node: every enclave of the image,
                      on any instance, may open every node's shares, so one
                      compromised instance exposes all of them (a single-
                      instance deployment only; a warning says so)
  --admin-role ARN    the key administrators' IAM role (or user) ARN
  --enclave-role ARN  the parent instances' IAM role ARN (the credentials the
                      hosts hand their enclaves)

Exit status: 0 printed, 2 a malformed value (the message names it).
`,
  audit: `Usage: tss audit --db PATH [--wallet ID] [--since TIME] [--json]

Shows a node's audit log: ceremonies started, finished and aborted (with the
reason and the node blamed), shares stored, refreshes, approval decisions and
policy changes, each with its request id and requester where known. Run it on
the node against its database file; the file is opened read-only, so it is
safe beside the running host.

It also checks the log's hash chain, always over every row (filters only
narrow what is shown): each row commits to the one before it, so a row that
was altered, deleted or moved is found, and the first row that does not hold
is named, and so are deleted newest rows. Someone who can write the file
and also resets its row counter or rewrites the whole chain is found only by
comparing the head it prints with one you noted earlier, off the node.

  --db PATH       the node's libSQL database file
  --wallet ID     show only this wallet's rows (and its ceremonies')
  --since TIME    show rows from then on: 2026-12-01, 2026-12-01T08:00Z, or
                  a duration ago such as 90m, 12h, 7d
  --json          print one JSON document: {"entries": […], "chain": {…}}

Exit status: 0 the chain holds, 1 it is broken (or cannot be checked),
2 usage or configuration error (such as a file that cannot be opened).
`,
};

export function commandHelp(c: Command): string {
  // A local command takes none of the connection options.
  if (COMMANDS[c].local) return COMMAND_HELP[c];
  return `${COMMAND_HELP[c]}\n${GLOBAL_HELP}\n`;
}
