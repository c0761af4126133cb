// Package playbooks holds haconf's Ansible playbooks (site.yml). The Go
// files here only test them with the real ansible-playbook.
package playbooks
