/*
 * A DRAC client as the POP servers' dracauth() is one: clnt_create() finds program 900101
 * through rpcbind, then one DRACPROC_ADD call. Usage: drac_client HOST udp|tcp ADDRESS
 * (an IPv4 address uses version 1, an IPv6 one version 2). Prints the addstat number;
 * exits 0 when the call was answered, 1 otherwise (the RPC error on stderr).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "drac.h"

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: %s HOST udp|tcp ADDRESS\n", argv[0]);
		return 2;
	}
	struct in_addr a4;
	struct in6_addr a6;
	int v6 = 0;
	if (inet_pton(AF_INET, argv[3], &a4) != 1) {
		if (inet_pton(AF_INET6, argv[3], &a6) != 1) {
			fprintf(stderr, "bad address %s\n", argv[3]);
			return 2;
		}
		v6 = 1;
	}
	CLIENT *clnt = clnt_create(argv[1], DRACPROG, v6 ? DRACVERS6 : DRACVERS, argv[2]);
	if (clnt == NULL) {
		clnt_pcreateerror(argv[1]);
		return 1;
	}
	addstat *result;
	if (v6) {
		drac_add_parm6 arg;
		memcpy(arg.ip_addr6, a6.s6_addr, 16);
		result = dracproc_add_2(&arg, clnt);
	} else {
		drac_add_parm arg;
		arg.ip_addr = ntohl(a4.s_addr); /* host order: XDR puts it on the wire in network order */
		result = dracproc_add_1(&arg, clnt);
	}
	if (result == NULL) {
		clnt_perror(clnt, "call failed");
		clnt_destroy(clnt);
		return 1;
	}
	printf("%d\n", (int)*result);
	clnt_destroy(clnt);
	return 0;
}
