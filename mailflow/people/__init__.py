"""Who is who: teams, groups and agents; usergroups, members and supervisors; who may do what."""
