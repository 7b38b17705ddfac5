#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cellmgr/bind.h"
#include "cellmgr/sysfs.h"

static void refresh(const struct cm_hw *hw, struct cm_link *l)
{
	if (cm_sysfs_pci_driver(hw->sysfs_root, l->pci.bdf, l->driver, sizeof(l->driver)) < 0)
		l->driver[0] = '\0';
	if (cm_sysfs_pci_uio(hw->sysfs_root, l->pci.bdf, l->uio, sizeof(l->uio)) < 0)
		l->uio[0] = '\0';
}

static int write_attr(const struct cm_hw *hw, const char *rel, const char *bdf,
		      const char *value, struct cm_link *l)
{
	char path[PATH_MAX];
	int ret;

	if (bdf)
		snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/%s", hw->sysfs_root, bdf, rel);
	else
		snprintf(path, sizeof(path), "%s/bus/pci/%s", hw->sysfs_root, rel);
	ret = hw->ops->sysfs_write(hw->ctx, path, value);
	if (ret < 0)
		snprintf(l->note, sizeof(l->note), "writing \"%.40s\" to %.120s failed", value,
			 path + strlen(hw->sysfs_root));
	return ret;
}

static int bind_one(const struct cm_hw *hw, enum cm_bind_method method, struct cm_link *l)
{
	int ret;

	if (l->driver[0]) {
		/* Another driver (e.g. a stale binding) holds it: release it. */
		ret = write_attr(hw, "driver/unbind", l->pci.bdf, l->pci.bdf, l);
		if (ret < 0)
			return ret;
	}
	if (method == CM_BIND_OVERRIDE) {
		ret = write_attr(hw, "driver_override", l->pci.bdf, CM_UIO_DRIVER, l);
		if (ret < 0)
			return ret;
		ret = write_attr(hw, "drivers_probe", NULL, l->pci.bdf, l);
		if (ret < 0)
			return ret;
	} else {
		char id[64];

		snprintf(id, sizeof(id), "%04x %04x %04x %04x %06x ffffff",
			 CM_IVSHMEM_VENDOR, CM_IVSHMEM_DEVICE, l->pci.subsys_vendor,
			 l->pci.subsys_device, l->pci.class_code);
		ret = write_attr(hw, "drivers/" CM_UIO_DRIVER "/new_id", NULL, id, l);
		/* EEXIST: the id is known already (static table or an earlier
		 * new_id); the kernel then did not probe, so bind explicitly. */
		if (ret < 0 && ret != -EEXIST)
			return ret;
		refresh(hw, l);
		if (strcmp(l->driver, CM_UIO_DRIVER)) {
			ret = write_attr(hw, "drivers/" CM_UIO_DRIVER "/bind", NULL, l->pci.bdf, l);
			if (ret < 0)
				return ret;
		}
	}
	l->note[0] = '\0';
	refresh(hw, l);
	if (strcmp(l->driver, CM_UIO_DRIVER)) {
		snprintf(l->note, sizeof(l->note),
			 "still bound to \"%s\" after binding; check dmesg for uio_ivshmem probe errors",
			 l->driver[0] ? l->driver : "(none)");
		return -EIO;
	}
	if (!l->uio[0]) {
		snprintf(l->note, sizeof(l->note),
			 "bound to uio_ivshmem but no uio device appeared; check dmesg");
		return -ENODEV;
	}
	return 0;
}

static int scan(const struct cm_hw *hw, const char *pci_dump, struct cm_link **links,
		size_t *n, struct cm_err *err)
{
	struct cm_ivshmem_pci *devs;
	struct cm_link *v;
	size_t cnt;
	int ret;

	*links = NULL;
	*n = 0;
	ret = cm_pci_scan(pci_dump, &devs, &cnt, err);
	if (ret < 0)
		return ret;
	v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v) {
		free(devs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cnt; i++) {
		struct cm_link *l = &v[i];

		l->pci = devs[i];
		l->kind = cm_proto_kind(devs[i].protocol);
		refresh(hw, l);
		if (!strcmp(l->driver, CM_UIO_DRIVER)) {
			l->action = CM_LINK_ALREADY;
			continue;
		}
		l->action = CM_LINK_SKIPPED;
		switch (l->kind) {
		case CM_PROTO_VIRTIO_BACK:
			snprintf(l->note, sizeof(l->note), "virtio back-end, not bound to %s",
				 CM_UIO_DRIVER);
			break;
		case CM_PROTO_VIRTIO_FRONT:
			snprintf(l->note, sizeof(l->note),
				 "front-end in this (root) cell: the back-end must run here, so the root "
				 "config needs protocol 0x%04x (VIRTIO_BACK) for this link",
				 0xc000 | (devs[i].protocol & 0x3fff));
			break;
		case CM_PROTO_UNDEFINED:
			snprintf(l->note, sizeof(l->note), "raw link: %s binds it without help once loaded",
				 CM_UIO_DRIVER);
			break;
		case CM_PROTO_VETH:
			snprintf(l->note, sizeof(l->note), "network link, served by ivshmem-net");
			break;
		default:
			snprintf(l->note, sizeof(l->note), "custom/reserved protocol, left alone");
			break;
		}
	}
	free(devs);
	*links = v;
	*n = cnt;
	return 0;
}

int cm_list_links(const struct cm_hw *hw, const char *pci_dump,
		  struct cm_link **links, size_t *n, struct cm_err *err)
{
	return scan(hw, pci_dump, links, n, err);
}

int cm_bind_links(const struct cm_hw *hw, const char *pci_dump, enum cm_bind_method method,
		  struct cm_link **links, size_t *n, struct cm_err *err)
{
	bool need_module = false;
	int ret;

	ret = scan(hw, pci_dump, links, n, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < *n; i++) {
		struct cm_link *l = &(*links)[i];

		if (l->action == CM_LINK_SKIPPED &&
		    (l->kind == CM_PROTO_VIRTIO_BACK || l->kind == CM_PROTO_UNDEFINED))
			need_module = true;
	}
	if (!need_module)
		return 0;
	ret = hw->ops->load_module(hw->ctx, CM_UIO_DRIVER);
	if (ret < 0) {
		if (ret == -ENOENT) {
			cm_err_set(err, "kernel module %s not found", CM_UIO_DRIVER);
			cm_err_hint(err, "it is not in mainline Linux: build the root kernel from a Jailhouse "
				    "queue with CONFIG_UIO_IVSHMEM=m and run depmod");
		} else {
			cm_err_set(err, "loading kernel module %s failed", CM_UIO_DRIVER);
			cm_err_hint(err, "see dmesg; unknown symbols mean the uio core lacks the "
				    "\"uio: Enable read-only mappings\" patch of the Jailhouse queue");
		}
		return ret;
	}
	for (size_t i = 0; i < *n; i++) {
		struct cm_link *l = &(*links)[i];

		if (l->action != CM_LINK_SKIPPED)
			continue;
		if (l->kind == CM_PROTO_UNDEFINED) {
			/* The module binds raw links by itself on load. */
			refresh(hw, l);
			if (!strcmp(l->driver, CM_UIO_DRIVER)) {
				l->action = CM_LINK_ALREADY;
				l->note[0] = '\0';
			}
			continue;
		}
		if (l->kind != CM_PROTO_VIRTIO_BACK)
			continue;
		l->note[0] = '\0';
		ret = bind_one(hw, method, l);
		if (ret < 0) {
			l->action = CM_LINK_FAILED;
			l->error = ret;
		} else {
			l->action = CM_LINK_BOUND;
		}
	}
	return 0;
}
