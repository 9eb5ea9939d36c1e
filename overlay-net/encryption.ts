// Encrypted overlays need WireGuard or IPsec ESP with an AEAD cipher. Both are probed for real,
// in a throwaway namespace of our own (nothing touches the node's links or SAs), and the error
// names exactly what is missing. See ENCRYPTION.md for the design.
import { randomBytes } from "node:crypto";
import { OverlayEncryptionUnsupportedError } from "./errors.ts";
import { exec } from "./exec.ts";

export interface EncryptionSupport {
	wireguard: boolean;
	/** ESP transport mode with rfc4106(gcm(aes)), what Docker Swarm's encrypted overlay uses. */
	ipsecAead: boolean;
	/** The kernel's words for what failed, per mechanism. */
	errors: { wireguard?: string; ipsecAead?: string };
}

const reason = (e: unknown) => (e instanceof Error ? (e.message.split(": ").pop() ?? e.message) : String(e)).trim();

export async function probeEncryption(): Promise<EncryptionSupport> {
	const ns = `tsov-probe-${process.pid}-${randomBytes(3).toString("hex")}`;
	await exec(["ip", "netns", "add", ns]);
	const out: EncryptionSupport = { wireguard: false, ipsecAead: false, errors: {} };
	try {
		await exec(["ip", "-n", ns, "link", "add", "wg0", "type", "wireguard"]).then(
			() => {
				out.wireguard = true;
			},
			(e) => {
				out.errors.wireguard = reason(e);
			},
		);
		// A security association with a random key between two documentation-range addresses; it
		// lives only in the throwaway namespace and carries no traffic.
		const key = `0x${randomBytes(20).toString("hex")}`;
		const sa = ["src", "198.18.255.1", "dst", "198.18.255.2", "proto", "esp", "spi", "0x100", "reqid", "1"];
		await exec([
			"ip",
			"-n",
			ns,
			"xfrm",
			"state",
			"add",
			...sa,
			"mode",
			"transport",
			"aead",
			"rfc4106(gcm(aes))",
			key,
			"128",
		]).then(
			() => {
				out.ipsecAead = true;
			},
			(e) => {
				out.errors.ipsecAead = reason(e);
			},
		);
	} finally {
		await exec(["ip", "netns", "delete", ns]).catch(() => {});
	}
	return out;
}

/**
 * Resolves when the kernel could carry an encrypted overlay; otherwise an
 * OverlayEncryptionUnsupportedError naming what is missing.
 */
export async function checkEncryptionSupport(): Promise<EncryptionSupport> {
	const s = await probeEncryption();
	if (s.wireguard || s.ipsecAead) return s;
	throw new OverlayEncryptionUnsupportedError(
		`neither WireGuard (ip link add type wireguard: ${s.errors.wireguard}) nor IPsec ESP with AES-GCM ` +
			`(ip xfrm state ... aead rfc4106(gcm(aes)): ${s.errors.ipsecAead}) is available; see overlay-net/ENCRYPTION.md`,
		["wireguard", "ipsec-aead"],
	);
}
