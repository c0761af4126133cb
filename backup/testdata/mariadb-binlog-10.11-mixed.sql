/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=1*/;
/*!40019 SET @@session.max_delayed_threads=0*/;
/*!50003 SET @OLD_COMPLETION_TYPE=@@COMPLETION_TYPE,COMPLETION_TYPE=0*/;
DELIMITER /*!*/;
# at 4
#261121 10:10:58 server id 1  end_log_pos 256 CRC32 0x72ecc7cb 	Start: binlog v 4, server v 10.11.19-MariaDB-0+deb12u1-log created 261121 10:10:58 at startup
# Warning: this binlog is either in use or was not closed properly.
ROLLBACK/*!*/;
BINLOG '
Mm4Baw8BAAAA/AAAAAABAAABAAQAMTAuMTEuMTktTWFyaWFEQi0wK2RlYjEydTEtbG9nAAAAAAAA
AAAAAAAAAAAAAAAAAAAybgFrEzgNAAgAEgAEBAQEEgAA5AAEGggAAAAICAgCAAAACgoKAAAAAAAA
CgoKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAEEwQADQgICAoKCgHLx+xy
'/*!*/;
# at 790
#261121 10:11:02 server id 1  end_log_pos 832 CRC32 0xc2f8bf98 	GTID 0-1-4 trans
/*M!100101 SET @@session.skip_parallel_replication=0*//*!*/;
/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;
/*M!100001 SET @@session.server_id=1*//*!*/;
/*M!100001 SET @@session.gtid_seq_no=4*//*!*/;
START TRANSACTION
/*!*/;
# at 832
#261121 10:11:02 server id 1  end_log_pos 927 CRC32 0x4e28c215 	Query	thread_id=5	exec_time=0	error_code=0	xid=0
SET TIMESTAMP=1795255862/*!*/;
SET @@session.pseudo_thread_id=5/*!*/;
SET @@session.foreign_key_checks=1, @@session.sql_auto_is_null=0, @@session.unique_checks=1, @@session.autocommit=1, @@session.check_constraint_checks=1, @@session.sql_if_exists=0, @@session.explicit_defaults_for_timestamp=1, @@session.system_versioning_insert_history=0/*!*/;
SET @@session.sql_mode=1411383296/*!*/;
SET @@session.auto_increment_increment=1, @@session.auto_increment_offset=1/*!*/;
/*!\C utf8mb3 *//*!*/;
SET @@session.character_set_client=utf8mb3,@@session.collation_connection=33,@@session.collation_server=8/*!*/;
SET @@session.lc_time_names=0/*!*/;
SET @@session.collation_database=DEFAULT/*!*/;
update t1.a set v='z' where id=2
/*!*/;
# at 927
#261121 10:11:02 server id 1  end_log_pos 958 CRC32 0x550949e8 	Xid = 12
COMMIT/*!*/;
# at 958
#261121 10:11:02 server id 1  end_log_pos 1000 CRC32 0xb990c523 	GTID 0-1-5 ddl
/*M!100001 SET @@session.gtid_seq_no=5*//*!*/;
# at 1000
#261121 10:11:02 server id 1  end_log_pos 1105 CRC32 0x9cf072e8 	Query	thread_id=5	exec_time=0	error_code=0	xid=13
SET TIMESTAMP=1795255862/*!*/;
alter table t1.a add column w int
/*!*/;
# at 1105
#261121 10:11:02 server id 1  end_log_pos 1147 CRC32 0x768bc248 	GTID 0-1-6 trans
/*M!100001 SET @@session.gtid_seq_no=6*//*!*/;
START TRANSACTION
/*!*/;
# at 1147
#261121 10:11:02 server id 1  end_log_pos 1237 CRC32 0xe2076ec1 	Query	thread_id=5	exec_time=0	error_code=0	xid=0
SET TIMESTAMP=1795255862/*!*/;
delete from t1.a where id=1
/*!*/;
# at 1237
#261121 10:11:02 server id 1  end_log_pos 1268 CRC32 0xf9d165a7 	Xid = 14
COMMIT/*!*/;
# at 1268
#261121 10:11:02 server id 1  end_log_pos 1310 CRC32 0x757928e7 	GTID 0-1-7 trans
/*M!100001 SET @@session.gtid_seq_no=7*//*!*/;
START TRANSACTION
/*!*/;
# at 1310
#261121 10:11:02 server id 1  end_log_pos 1406 CRC32 0x2ec034e5 	Query	thread_id=5	exec_time=0	error_code=0	xid=0
SET TIMESTAMP=1795255862/*!*/;
insert into t1.a values (5,'q',3)
/*!*/;
# at 1406
#261121 10:11:02 server id 1  end_log_pos 1437 CRC32 0xca66ccd5 	Xid = 15
COMMIT/*!*/;
DELIMITER ;
# End of log file
ROLLBACK /* added by mysqlbinlog */;
/*!50003 SET COMPLETION_TYPE=@OLD_COMPLETION_TYPE*/;
/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=0*/;
