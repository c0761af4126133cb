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
# at 1437
#261121 10:13:55 server id 1  end_log_pos 1479 CRC32 0x19e19a93 	GTID 0-1-8 ddl
/*M!100101 SET @@session.skip_parallel_replication=0*//*!*/;
/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;
/*M!100001 SET @@session.server_id=1*//*!*/;
/*M!100001 SET @@session.gtid_seq_no=8*//*!*/;
# at 1479
#261121 10:13:55 server id 1  end_log_pos 1596 CRC32 0x3baf3356 	Query	thread_id=6	exec_time=0	error_code=0	xid=18
SET TIMESTAMP=1795256035/*!*/;
SET @@session.pseudo_thread_id=6/*!*/;
SET @@session.foreign_key_checks=1, @@session.sql_auto_is_null=0, @@session.unique_checks=1, @@session.autocommit=1, @@session.check_constraint_checks=1, @@session.sql_if_exists=0, @@session.explicit_defaults_for_timestamp=1, @@session.system_versioning_insert_history=0/*!*/;
SET @@session.sql_mode=1411383296/*!*/;
SET @@session.auto_increment_increment=1, @@session.auto_increment_offset=1/*!*/;
/*!\C utf8mb3 *//*!*/;
SET @@session.character_set_client=utf8mb3,@@session.collation_connection=33,@@session.collation_server=8/*!*/;
SET @@session.lc_time_names=0/*!*/;
SET @@session.collation_database=DEFAULT/*!*/;
create table t1.b(id int primary key, v blob)
/*!*/;
# at 1596
#261121 10:13:55 server id 1  end_log_pos 1638 CRC32 0xb3174ab9 	GTID 0-1-9 trans
/*M!100001 SET @@session.gtid_seq_no=9*//*!*/;
START TRANSACTION
/*!*/;
# at 1638
# at 1707
#261121 10:13:55 server id 1  end_log_pos 1707 CRC32 0x41e979fc 	Annotate_rows:
#Q> insert into t1.b values (1, 'a\tb'), (2, NULL)
#261121 10:13:55 server id 1  end_log_pos 1751 CRC32 0x757f6aa7 	Table_map: `t1`.`b` mapped to number 28
# at 1751
#261121 10:13:55 server id 1  end_log_pos 1799 CRC32 0x82e33842 	Write_rows: table id 28 flags: STMT_END_F

BINLOG '
424BaxMBAAAALAAAANcGAAAAABwAAAAAAAEAAnQxAAFiAAID/AECAqdqf3U=
424BaxcBAAAAMAAAAAcHAAAAABwAAAAAAAEAAgP8AQAAAAMAYQli/gIAAABCOOOC
'/*!*/;
# Number of rows: 2
# at 1799
#261121 10:13:55 server id 1  end_log_pos 1830 CRC32 0x8b9fed6e 	Xid = 19
COMMIT/*!*/;
# at 1830
#261121 10:13:55 server id 1  end_log_pos 1872 CRC32 0x1286ac23 	GTID 0-1-10 trans
/*M!100001 SET @@session.gtid_seq_no=10*//*!*/;
START TRANSACTION
/*!*/;
# at 1872
# at 1927
#261121 10:13:55 server id 1  end_log_pos 1927 CRC32 0xe50de43f 	Annotate_rows:
#Q> update t1.b set v='x' where id=1
#261121 10:13:55 server id 1  end_log_pos 1971 CRC32 0xed695aca 	Table_map: `t1`.`b` mapped to number 28
# at 1971
#261121 10:13:55 server id 1  end_log_pos 2023 CRC32 0xa47d1dc5 	Update_rows: table id 28 flags: STMT_END_F

BINLOG '
424BaxMBAAAALAAAALMHAAAAABwAAAAAAAEAAnQxAAFiAAID/AECAspaae0=
424BaxgBAAAANAAAAOcHAAAAABwAAAAAAAEAAgMD/AEAAAADAGEJYvwBAAAAAQB4xR19pA==
'/*!*/;
# Number of rows: 1
# at 2023
#261121 10:13:55 server id 1  end_log_pos 2054 CRC32 0x6b4e499a 	Xid = 20
COMMIT/*!*/;
# at 2054
#261121 10:13:55 server id 1  end_log_pos 2096 CRC32 0x2d72f297 	GTID 0-1-11 trans
/*M!100001 SET @@session.gtid_seq_no=11*//*!*/;
START TRANSACTION
/*!*/;
# at 2096
# at 2146
#261121 10:13:55 server id 1  end_log_pos 2146 CRC32 0xca063cad 	Annotate_rows:
#Q> delete from t1.b where id=2
#261121 10:13:55 server id 1  end_log_pos 2190 CRC32 0x4f515721 	Table_map: `t1`.`b` mapped to number 28
# at 2190
#261121 10:13:55 server id 1  end_log_pos 2228 CRC32 0x0e679a9e 	Delete_rows: table id 28 flags: STMT_END_F

BINLOG '
424BaxMBAAAALAAAAI4IAAAAABwAAAAAAAEAAnQxAAFiAAID/AECAiFXUU8=
424BaxkBAAAAJgAAALQIAAAAABwAAAAAAAEAAgP+AgAAAJ6aZw4=
'/*!*/;
# Number of rows: 1
# at 2228
#261121 10:13:55 server id 1  end_log_pos 2259 CRC32 0x873f0316 	Xid = 21
COMMIT/*!*/;
DELIMITER ;
# End of log file
ROLLBACK /* added by mysqlbinlog */;
/*!50003 SET COMPLETION_TYPE=@OLD_COMPLETION_TYPE*/;
/*!50530 SET @@SESSION.PSEUDO_SLAVE_MODE=0*/;
