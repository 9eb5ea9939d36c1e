// Shapes the local API answers with, shared by the agent that builds them and the CLI that reads them.

/** `network inspect` / `network ls`: docker's shape, so scripts written for it keep working. */
export interface NetworkInspect {
	Name: string;
	Id: string;
	Created: string;
	Scope: "swarm";
	Driver: string;
	EnableIPv6: boolean;
	IPAM: { Driver: string; Config: Array<{ Subnet: string; Gateway: string }> };
	Internal: boolean;
	Attachable: boolean;
	Ingress: boolean;
	Options: Record<string, string>;
	Labels: Record<string, string>;
	/** The store version (Raft index) of the record. */
	Version: number;
}
